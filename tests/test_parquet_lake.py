"""The Parquet lake follows the raw layer (citybrain/lake/parquet_lake.py): one file per feed partition,
rewritten only when its batches change, removed when emptied, schema kept for an empty feed, and readable
by DuckDB views exactly as the raw tables."""

from __future__ import annotations

import duckdb
import pytest

from citybrain.lake import parquet_lake


@pytest.fixture
def warehouse(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("CREATE SCHEMA raw; CREATE SCHEMA reference")
    con.execute(
        "CREATE TABLE raw.calls (id VARCHAR, _partition VARCHAR, _source_file VARCHAR, _file_sha256 VARCHAR, "
        "_row_number BIGINT, _batch_id VARCHAR, _loaded_at TIMESTAMPTZ)"
    )
    con.execute("CREATE TABLE raw.registry AS SELECT * FROM raw.calls LIMIT 0")
    con.execute("CREATE TABLE raw.empty_feed AS SELECT * FROM raw.calls LIMIT 0")
    con.execute("CREATE TABLE reference.feeds AS SELECT 'calls' AS feed_id")
    con.execute(
        "INSERT INTO raw.calls SELECT '0' || i, d, 'f' || d, 'sha' || d, i, 'run1', now() "
        "FROM range(3) r(i), (VALUES ('2026-11-01'), ('2026-11-02')) p(d)"
    )
    con.execute(
        "INSERT INTO raw.registry SELECT '00' || i, NULL, 'reg.csv', 'sha', i, 'run1', now() FROM range(4) r(i)"
    )
    yield con
    con.close()


def files(lake, feed):
    return sorted(
        p.relative_to(lake / "raw" / f"feed={feed}").as_posix()
        for p in (lake / "raw" / f"feed={feed}").rglob("*.parquet")
    )


def test_partitions_are_written_once_and_rewritten_only_when_their_batches_change(warehouse, tmp_path):
    lake = tmp_path / "lake"
    first = parquet_lake.sync(warehouse, lake)
    assert sorted(first.written) == [
        "calls/partition=2026-11-01",
        "calls/partition=2026-11-02",
        "empty_feed/partition=__HIVE_DEFAULT_PARTITION__",
        "reference.feeds",
        "registry/partition=__HIVE_DEFAULT_PARTITION__",
    ]
    before = files(lake, "calls")
    assert parquet_lake.sync(warehouse, lake).written == []  # nothing changed, nothing written
    # A corrected redelivery of one day: only that partition is rewritten.
    warehouse.execute("DELETE FROM raw.calls WHERE _partition = '2026-11-02'")
    warehouse.execute("INSERT INTO raw.calls SELECT 'new', '2026-11-02', 'f2', 'sha-new', 0, 'run2', now()")
    second = parquet_lake.sync(warehouse, lake)
    assert second.written == ["calls/partition=2026-11-02"]
    after = files(lake, "calls")
    assert after[0] == before[0] and after[1] != before[1]
    # A day whose rows all went to history disappears from the lake.
    warehouse.execute("DELETE FROM raw.calls WHERE _partition = '2026-11-01'")
    assert parquet_lake.sync(warehouse, lake).removed == ["calls/partition=2026-11-01"]
    assert not list(lake.rglob(".tmp-*"))


def test_duckdb_views_over_the_lake_read_what_the_raw_tables_hold(warehouse, tmp_path):
    lake = tmp_path / "lake"
    parquet_lake.sync(warehouse, lake)
    reader = duckdb.connect()
    created = parquet_lake.duckdb_views(reader, lake)
    assert set(created) == {"raw.calls", "raw.registry", "raw.empty_feed", "reference.feeds"}
    for table in ("calls", "registry", "empty_feed"):
        expected = sorted(warehouse.execute(f"SELECT id, _partition, _batch_id FROM raw.{table}").fetchall())
        assert (
            sorted(reader.execute(f"SELECT id, _partition, _batch_id FROM raw.{table}").fetchall())
            == expected
        )
    # IDs stay text, lineage columns keep their types.
    types = dict(reader.execute("SELECT column_name, column_type FROM (DESCRIBE raw.calls)").fetchall())
    assert (
        types["id"] == "VARCHAR"
        and types["_row_number"] == "BIGINT"
        and types["_loaded_at"].startswith("TIMESTAMP")
    )
