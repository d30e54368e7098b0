"""The project's snapshot staging on DuckDB (dbt_project/macros/snapshot_staging.sql) against dbt's own.

Two throw-away dbt projects snapshot the same source through five nights (new, unchanged, changed,
a value becoming null and back, a key gone and back, a null key, a quiet night): one with the
project's staging macro, one with dbt's. The two histories must be the same, and both must be the
history written out by hand below.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import duckdb

REPO_ROOT = Path(__file__).resolve().parents[1]
OVERRIDE = REPO_ROOT / "dbt_project" / "macros" / "snapshot_staging.sql"

SNAPSHOT = """
{% snapshot snap_people %}
{{ config(unique_key='person', strategy='check', check_cols=['district', 'note'], hard_deletes='invalidate') }}
select person, district, note from main.people
{% endsnapshot %}
"""

# (person, district, note) delivered each night; None is SQL null.
NIGHTS = [
    [("a", "D1", "x"), ("b", "D2", "y"), ("c", "D3", None), ("d", "D4", "z")],
    # b moves, c's note appears, d is gone, e is new, a key-less row arrives
    [("a", "D1", "x"), ("b", "D5", "y"), ("c", "D3", "v"), ("e", "D6", "w"), (None, "D7", "n")],
    # d comes back, b moves back, c's note goes null again, e is gone
    [("a", "D1", "x"), ("b", "D2", "y"), ("c", "D3", None), ("d", "D4", "z")],
    # a quiet night: nothing changes
    [("a", "D1", "x"), ("b", "D2", "y"), ("c", "D3", None), ("d", "D4", "z")],
    # a changes both columns at once
    [("a", "D8", "q"), ("b", "D2", "y"), ("c", "D3", None), ("d", "D4", "z")],
]

# person, district, note, first night (1-based) of the version, night it was closed (None: current)
EXPECTED = sorted(
    [
        ("a", "D1", "x", 1, 5),
        ("a", "D8", "q", 5, None),
        ("b", "D2", "y", 1, 2),
        ("b", "D5", "y", 2, 3),
        ("b", "D2", "y", 3, None),
        ("c", "D3", None, 1, 2),
        ("c", "D3", "v", 2, 3),
        ("c", "D3", None, 3, None),
        ("d", "D4", "z", 1, 2),
        ("d", "D4", "z", 3, None),
        ("e", "D6", "w", 2, 3),
        # a row without a key never matches a kept one: inserted, then closed as gone the next night
        (None, "D7", "n", 2, 3),
    ],
    key=str,
)


def _project(root: Path, with_override: bool) -> Path:
    (root / "snapshots").mkdir(parents=True)
    (root / "macros").mkdir()
    (root / "snapshots" / "snap_people.sql").write_text(SNAPSHOT, encoding="utf-8")
    if with_override:
        shutil.copyfile(OVERRIDE, root / "macros" / OVERRIDE.name)
    (root / "dbt_project.yml").write_text(
        "name: staging_check\nversion: '1.0'\nprofile: staging_check\nconfig-version: 2\n"
        "snapshot-paths: [snapshots]\nmacro-paths: [macros]\n",
        encoding="utf-8",
    )
    (root / "profiles.yml").write_text(
        "staging_check:\n  target: duckdb\n  outputs:\n    duckdb:\n      type: duckdb\n"
        f"      path: '{root / 'lake.duckdb'}'\n      threads: 1\n",
        encoding="utf-8",
    )
    return root


def _deliver(project: Path, rows: list[tuple]) -> None:
    con = duckdb.connect(str(project / "lake.duckdb"))
    try:
        con.execute("CREATE OR REPLACE TABLE main.people (person VARCHAR, district VARCHAR, note VARCHAR)")
        con.executemany("INSERT INTO main.people VALUES (?, ?, ?)", rows)
    finally:
        con.close()


def _snapshot(project: Path) -> None:
    dbt = Path(sys.executable).with_name("dbt")
    proc = subprocess.run(
        [str(dbt), "snapshot", "--project-dir", str(project), "--profiles-dir", str(project),
         "--target-path", str(project / "target"), "--log-path", str(project / "logs"),
         "--log-level-file", "debug"],  # the statements in dbt.log, whatever the environment says
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:]


def _latest_time(project: Path):
    con = duckdb.connect(str(project / "lake.duckdb"), read_only=True)
    try:
        return con.execute(
            "SELECT max(greatest(dbt_valid_from, coalesce(dbt_valid_to, dbt_valid_from))) FROM main.snap_people"
        ).fetchone()[0]
    finally:
        con.close()


def _history(project: Path, latest_after_night: list) -> list[tuple]:
    """The snapshot's rows with each time replaced by the night (1-based) that wrote it: a time later than
    the latest one present after k nights was written after night k."""

    def night(ts):
        return None if ts is None else 1 + sum(1 for latest in latest_after_night if ts > latest)

    con = duckdb.connect(str(project / "lake.duckdb"), read_only=True)
    try:
        rows = con.execute(
            "SELECT person, district, note, dbt_valid_from, dbt_valid_to, dbt_scd_id FROM main.snap_people"
        ).fetchall()
    finally:
        con.close()
    assert len({r[5] for r in rows}) == len(rows), "dbt_scd_id must stay unique"
    return sorted(((p, d, n, night(f), night(t)) for p, d, n, f, t, _ in rows), key=str)


def _play(project: Path) -> list[tuple]:
    latest = []
    for rows in NIGHTS:
        _deliver(project, rows)
        _snapshot(project)
        latest.append(_latest_time(project))
    return _history(project, latest)


def test_the_one_join_staging_writes_the_history_dbt_writes(tmp_path):
    ours = _play(_project(tmp_path / "ours", with_override=True))
    dbts = _play(_project(tmp_path / "dbt", with_override=False))
    assert dbts == EXPECTED  # the scenario is what dbt itself does
    assert ours == EXPECTED


def test_the_override_is_the_staging_dbt_runs(tmp_path):
    """The project's macro, not dbt's, builds the staging table on DuckDB: its one full outer join."""
    project = _project(tmp_path / "ours", with_override=True)
    for rows in NIGHTS[:2]:
        _deliver(project, rows)
        _snapshot(project)
    log = (project / "logs" / "dbt.log").read_text(encoding="utf-8")
    staging = log.split("build_snapshot_staging_relation")[-1]
    assert "full outer join snapshotted_data" in staging
    assert "left outer join snapshotted_data" not in staging
