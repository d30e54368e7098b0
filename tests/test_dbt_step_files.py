"""What a dbt step leaves on disk: its target directory (the most recent ones kept, older ones removed) and
dbt's log file at info unless the environment asks for more (assets/dbt/target_dirs.py, process_env.py)."""

from __future__ import annotations

import os
from pathlib import Path

from assets.dbt.process_env import set_dbt_environment
from assets.dbt.target_dirs import prune_step_targets


def _step_dir(root: Path, name: str, mtime: float) -> Path:
    path = root / name
    (path / "compiled").mkdir(parents=True)
    (path / "dbt.log").write_text("{}\n", encoding="utf-8")
    os.utime(path, (mtime, mtime))
    return path


NOW = 1_800_000_000.0
DAY = 86_400


def test_step_directories_beyond_the_most_recent_are_removed_once_old(tmp_path):
    steps = ["citybrain_dbt_models", "citybrain_dbt_daily_models", "citybrain_dbt_indicators"]
    made = []
    for night in range(6):  # six nights of three steps, oldest first
        for i, step in enumerate(steps):
            made.append(_step_dir(tmp_path, f"{step}-run{night:04d}-{i:07d}", NOW - (6 - night) * DAY + i))
    (tmp_path / "partial_parse_by_profile").mkdir()  # not a step's directory: never touched
    (tmp_path / "manifest.json").write_text("{}", encoding="utf-8")
    (tmp_path / "citybrain_dbt_models-stray.txt").write_text(
        "a file, not a step's directory", encoding="utf-8"
    )

    # nights 6 to 1 days ago: beyond the 7 most recent, only those older than 4.5 days go (nights 0 and 1)
    removed = prune_step_targets(tmp_path, keep=7, days=4.5, now=NOW)
    assert sorted(removed) == sorted(made[:6])
    assert prune_step_targets(tmp_path, keep=7, days=4.5, now=NOW) == []

    removed = prune_step_targets(tmp_path, keep=7, days=0, now=NOW)  # then only the 7 most recent stay

    assert sorted(removed) == sorted(made[6:11])
    assert sorted(
        p for p in tmp_path.iterdir() if p.is_dir() and p.name.startswith("citybrain_dbt_")
    ) == sorted(made[11:])
    assert (tmp_path / "partial_parse_by_profile").is_dir()
    assert (tmp_path / "manifest.json").is_file()
    assert (tmp_path / "citybrain_dbt_models-stray.txt").is_file()
    assert prune_step_targets(tmp_path, keep=7, days=0, now=NOW) == []  # nothing more to remove


def test_dbt_logs_to_its_file_at_info_unless_the_environment_says_otherwise(tmp_path, monkeypatch):
    monkeypatch.delenv("DBT_LOG_LEVEL_FILE", raising=False)
    for name in ("CITYBRAIN_WAREHOUSE", "CITYBRAIN_MIN_DATE", "CITYBRAIN_MAX_DATE"):
        monkeypatch.delenv(name, raising=False)  # restored after the test: set_dbt_environment sets them
    set_dbt_environment(tmp_path / "warehouse.duckdb", ("2026-11-19", "2026-11-20"))
    assert os.environ["DBT_LOG_LEVEL_FILE"] == "info"
    monkeypatch.setenv("DBT_LOG_LEVEL_FILE", "debug")
    set_dbt_environment(tmp_path / "warehouse.duckdb", None)
    assert os.environ["DBT_LOG_LEVEL_FILE"] == "debug"
