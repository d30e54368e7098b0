"""Write-audit-publish per tier: versions are complete, switched atomically, kept N deep, traceable, and
each table lands in its classification's tier (restricted nowhere, unclassified stops the publication).

A reader in another process queries the open tier in a loop while versions are published one after the
other; every read must see one whole version and no read may fail.
"""

import json
import subprocess
import sys
import textwrap
import time

import duckdb
import pytest

from citybrain.access import audit
from citybrain.ingest.warehouse import run_sql, sql_text
from citybrain.publication import (
    PublicationError,
    list_publications,
    live_version,
    publish,
    tier_path,
)

TABLES = ("dim_a", "fct_b", "fct_c", "dim_secret")
CLASSIFICATION = {"dim_a": "open", "fct_b": "conditional", "fct_c": "open", "dim_secret": "restricted"}


@pytest.fixture(autouse=True)
def _audit_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CITYBRAIN_AUDIT_DIR", str(tmp_path / "audit"))


def publish_demo(warehouse, run_id, partitions, **kwargs):
    return publish(warehouse, run_id, partitions, CLASSIFICATION, **kwargs)


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
                for table in ("dim_a", "fct_c"):
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
    first = publish_demo(warehouse, "run-one", ["2026-03-01"], directory=pool, keep=2)
    assert live_version(pool, "open") == live_version(pool, "conditional") == first.version
    with duckdb.connect(str(tier_path("open", pool)), read_only=True) as con:
        assert con.execute("SELECT run_id, tier FROM meta.publication").fetchone() == ("run-one", "open")
        assert con.execute("SELECT count(*) FROM pool.fct_c").fetchone()[0] == 3001
        assert con.execute("SELECT count(*) FROM meta.deliveries").fetchone()[0] == 0  # schema present
    versions = [first.version]
    for generation in (2, 3):
        _build_warehouse(warehouse, generation)
        versions.append(publish_demo(warehouse, f"run-{generation}", [], directory=pool, keep=2).version)
    for tier in ("open", "conditional"):
        kept = sorted(p.stem for p in (pool / tier / "versions").glob("*.duckdb"))
        assert kept == versions[-2:], f"only the last two versions of {tier} are kept"
        assert not list((pool / tier).glob(".*")) and not list((pool / tier / "versions").glob(".*"))
    assert [p["run_id"] for p in list_publications(pool)] == ["run-one", "run-2", "run-3"]
    records = [r for r in audit.read_records() if r["action"] == "publication"]
    assert [(r["run_id"], r["outcome"]) for r in records] == [
        ("run-one", "ok"),
        ("run-2", "ok"),
        ("run-3", "ok"),
    ]
    assert records[0]["tables"] == ["pool.dim_a", "pool.fct_b", "pool.fct_c"] and records[0]["rows"] == 6003


def _tables(path):
    with duckdb.connect(str(path), read_only=True) as con:
        return {
            f"{s}.{t}"
            for s, t in con.execute("SELECT schema_name, table_name FROM duckdb_tables()").fetchall()
            if s != "meta"
        }


def test_each_table_goes_to_its_tier_and_restricted_stays_in_the_warehouse(tmp_path):
    warehouse, pool = tmp_path / "warehouse.duckdb", tmp_path / "pool"
    _build_warehouse(warehouse, 1)
    (pool / "versions").mkdir(parents=True)  # the single-file layout before tiers
    (pool / "citybrain_pool.duckdb").write_bytes(b"old")
    published = publish_demo(warehouse, "run-1", [], directory=pool)
    assert _tables(tier_path("open", pool)) == {"pool.dim_a", "pool.fct_c"}
    assert _tables(tier_path("conditional", pool)) == {"pool.fct_b"}
    assert published.withheld == ["pool.dim_secret"]
    every_file = [p for p in pool.rglob("*.duckdb")]
    assert every_file and all("pool.dim_secret" not in _tables(p) for p in every_file)
    assert not (pool / "citybrain_pool.duckdb").exists() and not (pool / "versions").exists()
    assert tier_path("open", pool).stat().st_mode & 0o222 == 0, "a published version is read-only"


def test_an_unclassified_pool_table_stops_the_publication(tmp_path):
    warehouse, pool = tmp_path / "warehouse.duckdb", tmp_path / "pool"
    _build_warehouse(warehouse, 1)
    publish_demo(warehouse, "run-1", [], directory=pool)
    _build_warehouse(warehouse, 2)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("CREATE TABLE pool.fct_new AS SELECT 1 AS n")
    with pytest.raises(PublicationError, match=r"no classification for pool\.fct_new"):
        publish_demo(warehouse, "run-2", [], directory=pool)
    with pytest.raises(PublicationError, match="unknown classification pool.fct_new: 'public'"):
        publish(warehouse, "run-3", [], {**CLASSIFICATION, "fct_new": "public"}, directory=pool)
    assert [p["run_id"] for p in list_publications(pool)] == ["run-1"], "the previous version stays live"
    assert len(list((pool / "open" / "versions").glob("*.duckdb"))) == 1, "nothing half-published"
    refused = [r for r in audit.read_records() if r["outcome"] == "error"]
    assert [r["run_id"] for r in refused] == ["run-2", "run-3"] and "fct_new" in refused[0]["detail"]


def test_open_reader_keeps_its_version_through_a_publication(tmp_path):
    warehouse, pool = tmp_path / "warehouse.duckdb", tmp_path / "pool"
    _build_warehouse(warehouse, 1)
    publish_demo(warehouse, "run-1", [], directory=pool, keep=1)
    with duckdb.connect(str(tier_path("conditional", pool)), read_only=True) as before:
        _build_warehouse(warehouse, 2)
        publish_demo(warehouse, "run-2", [], directory=pool, keep=1)  # the old version file is even deleted
        assert before.execute("SELECT DISTINCT generation FROM pool.fct_b").fetchall() == [(1,)]
    with duckdb.connect(str(tier_path("conditional", pool)), read_only=True) as after:
        assert after.execute("SELECT DISTINCT generation FROM pool.fct_b").fetchall() == [(2,)]


def test_reader_in_another_process_sees_whole_versions_and_no_error(tmp_path):
    warehouse, pool = tmp_path / "warehouse.duckdb", tmp_path / "pool"
    _build_warehouse(warehouse, 0)
    publish_demo(warehouse, "run-0", [], directory=pool, keep=3)
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(tier_path("open", pool)), "8"], stdout=subprocess.PIPE, text=True
    )
    published = 0
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        published += 1
        _build_warehouse(warehouse, published)
        publish_demo(warehouse, f"run-{published}", [], directory=pool, keep=3)
    report = json.loads(reader.communicate(timeout=60)[0])
    assert report["errors"] == [] and report["inconsistent"] == []
    assert report["reads"] > 20 and report["versions"] > 1, report
    assert published > 3


def test_keep_must_leave_the_live_version(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    _build_warehouse(warehouse, 1)
    with pytest.raises(ValueError, match="at least 1"):
        publish_demo(warehouse, "run", [], directory=tmp_path / "pool", keep=0)
