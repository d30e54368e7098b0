"""Write-audit-publish: versions are complete, switched atomically, kept N deep, and traceable.

A reader in another process queries the published pool in a loop while versions are published one
after the other; every read must see one whole version and no read may fail.
"""

import json
import subprocess
import sys
import textwrap
import time

import duckdb
import pytest

from citybrain.ingest.warehouse import run_sql, sql_text
from citybrain.publication import list_publications, live_version, publish, published_pool_path

TABLES = ("dim_a", "fct_b", "fct_c")


def _build_warehouse(path, generation: int) -> None:
    """A warehouse whose every pool table carries the generation number in every row."""
    with duckdb.connect(str(path)) as con:
        run_sql(con, sql_text("schema.sql"))
        con.execute("CREATE SCHEMA IF NOT EXISTS pool")
        for i, table in enumerate(TABLES):
            con.execute(
                f"CREATE OR REPLACE TABLE pool.{table} AS SELECT {generation} AS generation, range AS n "
                f"FROM range({1000 * (i + 1) + generation})"
            )


READER = textwrap.dedent(
    """
    import json, sys, time, duckdb
    path, seconds = sys.argv[1], float(sys.argv[2])
    reads, errors, versions, inconsistent = 0, [], set(), []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with duckdb.connect(path, read_only=True) as con:
                version, table_rows = con.execute("SELECT version, table_rows FROM meta.publication").fetchone()
                table_rows = json.loads(table_rows)
                generations = set()
                for table in ("dim_a", "fct_b", "fct_c"):
                    g, rows = con.execute(f"SELECT min(generation), count(*) FROM pool.{table}").fetchone()
                    generations.add(g)
                    if rows != table_rows[f"pool.{table}"]:
                        inconsistent.append((version, table, rows))
                if len(generations) != 1:
                    inconsistent.append((version, sorted(generations)))
                versions.add(version)
                reads += 1
        except Exception as error:  # noqa: BLE001 - every failure is what this reader reports
            errors.append(repr(error))
    print(json.dumps({"reads": reads, "errors": errors[:5], "versions": len(versions), "inconsistent": inconsistent[:5]}))
    """
)


def test_publication_is_complete_versioned_and_traceable(tmp_path):
    warehouse, pool = tmp_path / "warehouse.duckdb", tmp_path / "pool"
    _build_warehouse(warehouse, 1)
    first = publish(warehouse, "run-one", ["2026-03-01"], directory=pool, keep=2)
    assert live_version(pool) == first.version
    with duckdb.connect(str(published_pool_path(pool)), read_only=True) as con:
        assert con.execute("SELECT run_id FROM meta.publication").fetchone()[0] == "run-one"
        assert con.execute("SELECT count(*) FROM pool.fct_c").fetchone()[0] == 3001
        assert con.execute("SELECT count(*) FROM meta.deliveries").fetchone()[0] == 0  # schema present
    versions = [first.version]
    for generation in (2, 3):
        _build_warehouse(warehouse, generation)
        versions.append(publish(warehouse, f"run-{generation}", [], directory=pool, keep=2).version)
    kept = sorted(p.stem for p in (pool / "versions").glob("*.duckdb"))
    assert kept == versions[-2:], "only the last two versions are kept"
    assert [p["run_id"] for p in list_publications(pool)] == ["run-one", "run-2", "run-3"]
    assert not list(pool.glob(".*")) and not list((pool / "versions").glob(".*")), "no temporary files left"


def test_open_reader_keeps_its_version_through_a_publication(tmp_path):
    warehouse, pool = tmp_path / "warehouse.duckdb", tmp_path / "pool"
    _build_warehouse(warehouse, 1)
    publish(warehouse, "run-1", [], directory=pool, keep=1)
    with duckdb.connect(str(published_pool_path(pool)), read_only=True) as before:
        _build_warehouse(warehouse, 2)
        publish(warehouse, "run-2", [], directory=pool, keep=1)  # the old version file is even deleted
        assert before.execute("SELECT DISTINCT generation FROM pool.fct_b").fetchall() == [(1,)]
    with duckdb.connect(str(published_pool_path(pool)), read_only=True) as after:
        assert after.execute("SELECT DISTINCT generation FROM pool.fct_b").fetchall() == [(2,)]


def test_reader_in_another_process_sees_whole_versions_and_no_error(tmp_path):
    warehouse, pool = tmp_path / "warehouse.duckdb", tmp_path / "pool"
    _build_warehouse(warehouse, 0)
    publish(warehouse, "run-0", [], directory=pool, keep=3)
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(published_pool_path(pool)), "8"], stdout=subprocess.PIPE, text=True
    )
    published = 0
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        published += 1
        _build_warehouse(warehouse, published)
        publish(warehouse, f"run-{published}", [], directory=pool, keep=3)
    report = json.loads(reader.communicate(timeout=60)[0])
    assert report["errors"] == [] and report["inconsistent"] == []
    assert report["reads"] > 20 and report["versions"] > 1, report
    assert published > 3


def test_keep_must_leave_the_live_version(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    _build_warehouse(warehouse, 1)
    with pytest.raises(ValueError, match="at least 1"):
        publish(warehouse, "run", [], directory=tmp_path / "pool", keep=0)
