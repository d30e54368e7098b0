"""The run's days reach dbt by environment, read only when dbt executes (macros/partition_window.sql,
run_window), so a new day every night keeps dbt's partial parsing; the daily facts' tests check only
those days (macros/test_window.sql)."""

import os
import subprocess
import sys
from pathlib import Path

import duckdb

from citybrain.settings import REPO_ROOT

DBT_DIR = REPO_ROOT / "dbt_project"
FACT = "fct_presence_hourly"


def _dbt(command: list[str], target: Path, warehouse: Path, day: str) -> subprocess.CompletedProcess:
    dbt = Path(sys.executable).with_name("dbt")
    env = {
        **os.environ,
        "CITYBRAIN_WAREHOUSE": str(warehouse),
        "CITYBRAIN_MIN_DATE": day,
        "CITYBRAIN_MAX_DATE": day,
    }
    return subprocess.run(
        [str(dbt), *command, "--profiles-dir", ".", "--target-path", str(target), "--log-path", str(target)],
        cwd=DBT_DIR,
        capture_output=True,
        text=True,
        env=env,
    )


def test_a_new_day_keeps_partial_parsing_and_windows_the_daily_tests(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(warehouse)).close()
    target = tmp_path / "target"
    first = _dbt(["parse"], target, warehouse, "2026-01-01")
    assert first.returncode == 0, first.stdout[-2000:]
    first_log = len((target / "dbt.log").read_text(encoding="utf-8"))

    second = _dbt(["compile", "--select", f"test_type:generic,{FACT}"], target, warehouse, "2026-01-02")
    assert second.returncode == 0, second.stdout[-2000:]
    log = (target / "dbt.log").read_text(encoding="utf-8")[first_log:]  # the second invocation's
    # Not even the files that use the window are parsed again (as with --vars, the whole project was).
    assert "Nothing changed, skipping partial parsing" in log, [
        line for line in log.splitlines() if "arsing" in line
    ]

    compiled = list((target / "compiled").rglob(f"*{FACT}*.sql"))
    tests = [p.read_text(encoding="utf-8") for p in compiled if p.parent.name.endswith(".yml")]
    assert tests, compiled
    window = "stat_date between cast('2026-01-02' as date) and cast('2026-01-02' as date)"
    assert all(window in sql for sql in tests)
