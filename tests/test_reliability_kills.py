"""Killed runs (docs/RELIABILITY.md): SIGKILL at random points never loses or half-publishes the pool.

* Publication alone, cheap (default suite): a process publishing is killed at random moments of its
  publication, over and over; after each kill ``recover()`` (what the next run does first) leaves both tiers
  live at one version that matches its ``meta.publication``, no ``.partial`` file, link or intent record, a
  ``publications.jsonl`` whose every line parses and whose last line is the live version.
* The real nightly (slow): ``scripts/kill_runs.py`` kills ``citybrain run`` in ingestion, checks, dbt and
  publication, reruns, and compares the final pool with an uninterrupted run's, with readers polling.
"""

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from citybrain.publication import (
    INTENT_FILE,
    list_publications,
    live_version,
    publish,
    recover,
    tier_path,
)
from citybrain.settings import REPO_ROOT
from tests.test_publication import CLASSIFICATION, _build_warehouse

PUBLISHER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from citybrain.publication import publish
    from tests.test_publication import CLASSIFICATION
    warehouse, pool, run_id = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    print("ready", flush=True)
    publish(warehouse, run_id, [], CLASSIFICATION, directory=pool, keep=3)
    print("done", flush=True)
    """
)


def _publisher(warehouse: Path, pool: Path, run_id: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", PUBLISHER, str(warehouse), str(pool), run_id],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ},
    )


def _assert_consistent(pool: Path) -> str:
    versions = set()
    for tier in ("open", "conditional"):
        with duckdb.connect(str(tier_path(tier, pool)), read_only=True) as con:
            version, table_rows = con.execute("SELECT version, table_rows FROM meta.publication").fetchone()
            for table, rows in json.loads(table_rows).items():
                assert con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == rows
        versions.add(version)
    assert len(versions) == 1, f"tiers live at different versions {versions}"
    leftovers = [p.name for p in pool.rglob(".*") if p.is_file()]
    assert leftovers == [], f"left behind: {leftovers}"
    (version,) = versions
    assert list_publications(pool)[-1]["version"] == version, "the live version is the last one logged"
    for tier in ("open", "conditional"):
        kept = sorted(p.stem for p in (pool / tier / "versions").glob("*.duckdb"))
        assert kept[-1] == version, f"{tier}: a version newer than the live one was left: {kept}"
    return version


def test_publication_killed_at_random_points_recovers(tmp_path, monkeypatch):
    monkeypatch.setenv("CITYBRAIN_AUDIT_DIR", str(tmp_path / "audit"))
    warehouse, pool = tmp_path / "warehouse.duckdb", tmp_path / "pool"
    _build_warehouse(warehouse, 0)
    publish(warehouse, "run-0", [], CLASSIFICATION, directory=pool, keep=3)
    # How long one publication takes in a process of its own, from "ready" to its end.
    process = _publisher(warehouse, pool, "run-timing")
    assert process.stdout.readline().strip() == "ready"
    began = time.monotonic()
    assert process.stdout.readline().strip() == "done"
    duration = time.monotonic() - began
    process.wait()
    rng = random.Random(8)
    outcomes = {"killed": 0, "killed_after_intent": 0, "finished": 0, "rolled_forward": 0}
    for kill in range(8):
        _build_warehouse(warehouse, kill + 1)
        process = _publisher(warehouse, pool, f"run-kill-{kill}")
        assert process.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0, duration * 1.1))
        intent = (pool / INTENT_FILE).exists()
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        if process.returncode == -signal.SIGKILL:
            outcomes["killed"] += 1
            outcomes["killed_after_intent"] += intent
        else:
            outcomes["finished"] += 1
        outcomes["rolled_forward"] += recover(pool) is not None
        _assert_consistent(pool)
    assert outcomes["killed"] >= 5, outcomes
    # A publication after all this works as usual.
    _build_warehouse(warehouse, 99)
    last = publish(warehouse, "run-last", [], CLASSIFICATION, directory=pool, keep=3)
    assert _assert_consistent(pool) == last.version == live_version(pool, "conditional")


def test_a_torn_log_line_and_leftovers_are_cleaned_up(tmp_path, monkeypatch):
    """What a kill can leave in the pool directory, made by hand where a kill hitting it is too unlikely:
    a half-written publications.jsonl line, a .partial version with its WAL, a hard link never renamed, an
    intent record of a publication killed between the two tiers' switches."""
    monkeypatch.setenv("CITYBRAIN_AUDIT_DIR", str(tmp_path / "audit"))
    warehouse, pool = tmp_path / "warehouse.duckdb", tmp_path / "pool"
    _build_warehouse(warehouse, 1)
    first = publish(warehouse, "run-1", [], CLASSIFICATION, directory=pool)
    _build_warehouse(warehouse, 2)
    second = publish(warehouse, "run-2", [], CLASSIFICATION, directory=pool)
    # Pretend run-2 was killed right after switching the open tier: conditional still at run-1, no log line.
    (pool / "conditional" / "citybrain_conditional.duckdb").unlink()
    os.link(first.paths["conditional"], pool / "conditional" / "citybrain_conditional.duckdb")
    record = {**second.__dict__, "kept_versions": [], "keep": 7}
    (pool / INTENT_FILE).write_text(json.dumps(record), encoding="utf-8")
    log = (pool / "publications.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    (pool / "publications.jsonl").write_text(log[0] + log[1][:40], encoding="utf-8")  # torn line
    (pool / "open" / "versions" / ".20990101T000000Z_x.duckdb.partial").write_bytes(b"half")
    (pool / "open" / "versions" / ".20990101T000000Z_x.duckdb.partial.wal").write_bytes(b"wal")
    (pool / "open" / ".citybrain_open.duckdb.123.link").write_bytes(b"")
    assert live_version(pool, "conditional") == first.version != live_version(pool, "open")

    assert recover(pool) == second.version
    assert _assert_consistent(pool) == second.version
    assert [p["run_id"] for p in list_publications(pool)] == ["run-1", "run-2"]
    _build_warehouse(warehouse, 3)
    third = publish(warehouse, "run-3", [], CLASSIFICATION, directory=pool)
    assert _assert_consistent(pool) == third.version
    assert [p["run_id"] for p in list_publications(pool)] == ["run-1", "run-2", "run-3"]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_killed_nightly_runs_leave_the_same_pool_as_an_uninterrupted_run(tmp_path):
    """Six SIGKILLs of the real `citybrain run` (one per stage, then random), each followed by a rerun; the
    final pool equals an uninterrupted run's, and four readers never saw an error or a partial version."""
    out = tmp_path / "summary.json"
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "kill_runs.py"), "--kills", "6", "--rounds", "1",
         "--seed", "6", "--workdir", str(tmp_path / "work"), "--out", str(out)],
        cwd=REPO_ROOT, capture_output=True, text=True,
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"},
    )  # fmt: skip
    assert out.exists(), done.stderr[-3000:]
    summary = json.loads(out.read_text(encoding="utf-8"))
    assert summary["kills"] >= 5, summary["kill_log"]
    assert {"ingestion", "dbt", "checks", "publication"} <= set(summary["kills_per_stage"]), summary[
        "kills_per_stage"
    ]
    (round_report,) = summary["round_log"]
    assert round_report["rerun_exit"] == 0, round_report["rerun_tail"]
    assert round_report["identical_to_baseline"], round_report["differing_tables"]
    assert summary["reader_errors"] == 0 and summary["reader_inconsistent"] == 0, round_report["readers"]
    assert all(r["reads"] > 0 for r in round_report["readers"]), round_report["readers"]
    after = round_report["leftovers_after_rerun"]
    assert after["partial_versions"] == 0 and not after["intent"] and after["dagster_runs_started"] == 0, (
        after
    )
    assert done.returncode == 0
