"""Choosing the engine is configuration (docs/SCALE.md): the dbt resource, the Parquet lake switch, and
the Spark views over the lake, checked without starting Spark."""

from __future__ import annotations

from pathlib import Path

import duckdb

from citybrain import settings
from citybrain.lake import parquet_lake
from citybrain.scale import spark_sources


def test_the_default_target_is_duckdb_through_the_wrapper_and_no_parquet_lake(monkeypatch):
    monkeypatch.delenv("CITYBRAIN_DBT_TARGET", raising=False)
    monkeypatch.delenv("CITYBRAIN_RAW_PARQUET", raising=False)
    from orchestration.definitions import dbt_resource

    resource = dbt_resource()
    assert Path(resource.dbt_executable).name == "citybrain-dbt"
    assert Path(resource.dbt_executable).exists()
    assert resource.target is None
    assert not settings.raw_parquet_enabled()


def test_a_spark_target_runs_dbt_through_the_wrapper_and_writes_the_lake(monkeypatch):
    from orchestration.definitions import dbt_resource

    for target in ("spark", "spark_thrift"):
        monkeypatch.setenv("CITYBRAIN_DBT_TARGET", target)
        resource = dbt_resource()
        assert Path(resource.dbt_executable).name == "citybrain-dbt"
        assert Path(resource.dbt_executable).exists()
        assert resource.target == target
        assert settings.raw_parquet_enabled()
    monkeypatch.setenv("CITYBRAIN_DBT_TARGET", "duckdb")
    monkeypatch.setenv("CITYBRAIN_RAW_PARQUET", "1")
    assert settings.raw_parquet_enabled()


def test_spark_views_read_the_lake_in_place_with_the_files_columns(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("CREATE SCHEMA raw; CREATE SCHEMA reference")
    con.execute(
        "CREATE TABLE raw.calls AS SELECT '1' AS id, '2026-11-01' AS _partition, 'f' AS _source_file, "
        "'s' AS _file_sha256, 1::BIGINT AS _row_number, 'b' AS _batch_id, now() AS _loaded_at"
    )
    con.execute("CREATE TABLE reference.feeds AS SELECT 'calls' AS feed_id")
    lake = tmp_path / "lake"
    parquet_lake.sync(con, lake)
    statements = spark_sources.view_statements(lake)
    assert "CREATE DATABASE IF NOT EXISTS `raw`" in statements
    calls = next(s for s in statements if "`raw`.`calls`" in s)
    # The file's own columns, not the partition column Spark would infer from partition=...
    assert calls.startswith("CREATE OR REPLACE VIEW `raw`.`calls` AS SELECT `id`, `_partition`,")
    assert "`partition`" not in calls
    assert calls.endswith(f"FROM parquet.`{lake / 'raw' / 'feed=calls'}`")
    feeds = next(s for s in statements if "`reference`.`feeds`" in s)
    assert feeds.endswith(f"FROM parquet.`{lake / 'tables' / 'reference' / 'feeds'}`")
