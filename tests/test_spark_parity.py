"""The pool built on Apache Spark equals the pool built on DuckDB, from the same raw Parquet files.

A small demo city (two counties in two provinces, not the demo default) runs the nightly job with dbt on
the ``spark`` target (Spark in local mode in the dbt process, through ``citybrain-dbt``): ingestion writes
the Parquet lake, every dbt step builds on Spark, the quality gate and the tiered publication run on the
tables Spark built. Then DuckDB builds the whole dbt project from the same Parquet files (views in a
fresh database) and every pool table is compared (citybrain/scale/parity.py). Slow (a JVM per dbt step);
``.ci/run`` runs it after the default suite (``make test-scale``).
"""

from __future__ import annotations

import json

import duckdb
import pytest

from citybrain.lake.parquet_lake import NULL_PARTITION
from citybrain.scale.parity import run_parity
from tests.demo_lake import demo_lake, run_nightly

pytestmark = pytest.mark.slow

DAYS = ["2026-11-19", "2026-11-20"]
COUNTIES = ["510104", "440106"]  # Chengdu Jinjiang and Guangzhou Tianhe


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    home = tmp_path_factory.mktemp("spark_city")
    mp = pytest.MonkeyPatch()
    mp.setenv("CITYBRAIN_DBT_TARGET", "spark")
    mp.setenv("SPARK_LOCAL_IP", "127.0.0.1")
    try:
        with demo_lake(home, COUNTIES, DAYS, residents=1500, defect_rate=0.03):
            result = run_nightly(DAYS[0], DAYS[-1])
            report = run_parity(
                home / "lake",
                home / "parity",
                dbt_vars={"min_date": DAYS[0], "max_date": DAYS[-1]},
                spark_warehouse=home / "spark" / "warehouse",
            )
            yield {"home": home, "report": report, "result": result}
    finally:
        mp.undo()


def test_the_nightly_job_runs_on_spark_through_the_gate_to_publication(city):
    result = city["result"]
    failed = [e.step_key for e in result.all_events if e.is_step_failure]
    assert result.success, failed
    dbt_steps = [e.step_key for e in result.all_events if e.is_step_success and "dbt" in (e.step_key or "")]
    assert len(dbt_steps) >= 3
    home = city["home"]
    assert (home / "spark" / "warehouse" / "pool.db" / "dim_resident").is_dir()  # built by Spark
    open_tier = home / "pool" / "open" / "citybrain_open.duckdb"
    with duckdb.connect(str(open_tier), read_only=True) as con:
        districts = {
            r[0] for r in con.execute("SELECT district_code FROM pool.ind_district_monthly").fetchall()
        }
    assert districts == set(COUNTIES)


def test_ingestion_writes_the_raw_layer_as_hive_partitioned_parquet(city):
    home = city["home"]
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        feeds = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'raw' "
                "AND table_name NOT IN ('ingestion_log', 'quarantine', 'feed_cursor')"
            ).fetchall()
        ]
        assert len(feeds) >= 10
        for feed in feeds:
            in_duckdb = dict(
                con.execute(
                    f"SELECT coalesce(_partition, '{NULL_PARTITION}'), count(*) FROM raw.\"{feed}\" GROUP BY ALL"
                ).fetchall()
            )
            files = home / "lake" / "raw" / f"feed={feed}"
            in_parquet = dict(
                con.execute(
                    f"SELECT regexp_extract(filename, 'partition=([^/]+)', 1), count(*) "
                    f"FROM read_parquet('{files}/*/*.parquet', filename = true) GROUP BY ALL"
                ).fetchall()
            )
            assert in_parquet == in_duckdb, feed
            lineage = {
                r[0]
                for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet('{files}/*/*.parquet')").fetchall()
            }
            assert {
                "_partition",
                "_source_file",
                "_file_sha256",
                "_row_number",
                "_batch_id",
                "_loaded_at",
            } <= lineage
    finally:
        con.close()


def test_every_pool_table_is_equal_on_both_engines(city):
    report = city["report"]
    tables = {t["table"]: t for t in report["tables"]}
    assert {
        "dim_resident",
        "dim_enterprise",
        "fct_presence_hourly",
        "fct_od_daily",
        "ind_district_monthly",
    } <= set(tables)
    unequal = {name: t["problems"] for name, t in tables.items() if not t["equal"]}
    assert not unequal, json.dumps(unequal, indent=1, ensure_ascii=False)
    assert report["all_equal"]
    assert all(
        t["rows_duckdb"] > 0 for name, t in tables.items() if name.startswith(("dim_", "fct_", "ind_"))
    ), tables
    assert (city["home"] / "parity" / "parity.md").read_text(encoding="utf-8").count("| yes |") == len(tables)


def test_the_indicators_agree_within_the_stated_tolerance(city):
    report = city["report"]
    indicators = [t for t in report["tables"] if t["table"].startswith("ind_")]
    assert indicators
    for table in indicators:
        assert table["float_columns"], table["table"]
        for column, difference in table["max_abs_diff"].items():
            assert difference is None or difference <= 1e-6, (table["table"], column, difference)
