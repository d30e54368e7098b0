"""Incremental by day: three nightly runs, one day at a time, build the same pool as one 3-day backfill
run over the same days (re-running a day is covered by test_pool_spatial and test_demo_end_to_end)."""

from __future__ import annotations

import duckdb
import pytest

from tests.demo_lake import demo_lake, run_nightly

DAYS = ["2026-11-18", "2026-11-19", "2026-11-20"]
COUNTIES = ["330106", "320505"]  # Hangzhou Xihu and Suzhou Huqiu: two provinces' worth of codes
SALT = "a fixed salt so that both lakes derive the same pseudonyms"
LOAD_TIMES = {"last_loaded_at"}  # when the lake received a record: differs between two lakes by design


@pytest.fixture(scope="module")
def lakes(tmp_path_factory):
    homes = {}
    for name, runs in {
        "backfill": [(DAYS[0], DAYS[-1])],
        "nightly": [(d, d) for d in DAYS],
    }.items():
        home = tmp_path_factory.mktemp(name)
        with demo_lake(home, COUNTIES, DAYS, residents=1500) as _, pytest.MonkeyPatch.context() as mp:
            mp.setenv("CITYBRAIN_PSEUDONYM_SALT", SALT)
            for start, end in runs:
                # Without the GX checks: this is about what dbt builds; the gate has its own tests.
                assert run_nightly(start, end, checks=False).success, (name, start, end)
        homes[name] = home / "warehouse.duckdb"
    return homes


def test_nightly_runs_equal_one_backfill(lakes):
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH '{lakes['backfill']}' AS backfill (READ_ONLY)")
        con.execute(f"ATTACH '{lakes['nightly']}' AS nightly (READ_ONLY)")
        tables = [
            t
            for (t,) in con.execute(
                # The quality scorecards describe the runs themselves (delivery times, check runs), which
                # differ between one backfill and nightly runs by design.
                "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'backfill' "
                "AND table_schema = 'pool' AND table_name NOT LIKE 'quality_scorecard%'"
            ).fetchall()
        ]
        assert {"fct_presence_hourly", "fct_od_daily", "fct_hotline_ticket", "ind_district_monthly"} <= set(
            tables
        )
        for table in tables:
            (rows,) = con.execute(f"SELECT count(*) FROM backfill.pool.{table}").fetchone()
            assert rows > 0, table
            columns = ", ".join(
                # sums of doubles may differ in the last bits with the order rows arrive in
                f"round({name}, 6)" if data_type == "DOUBLE" else name
                for name, data_type in con.execute(
                    "SELECT column_name, data_type FROM information_schema.columns WHERE table_catalog = 'backfill' "
                    "AND table_schema = 'pool' AND table_name = ? ORDER BY ordinal_position",
                    [table],
                ).fetchall()
                if name not in LOAD_TIMES
            )
            for a, b in (("backfill", "nightly"), ("nightly", "backfill")):
                (diff,) = con.execute(
                    f"SELECT count(*) FROM (SELECT {columns} FROM {a}.pool.{table} "
                    f"EXCEPT ALL SELECT {columns} FROM {b}.pool.{table})"
                ).fetchone()
                assert diff == 0, f"pool.{table}: {diff} rows in the {a} lake are not in the {b} lake"
        days = con.execute(
            "SELECT DISTINCT stat_date FROM nightly.pool.fct_presence_hourly ORDER BY 1"
        ).fetchall()
        assert [str(d) for (d,) in days] == DAYS
    finally:
        con.close()
