"""One freshness rule (citybrain/quality/freshness.py) for `citybrain status` and the Dagster check: the
ingestion log read by status gives the same verdicts as the rule, with boundaries worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb

from citybrain.quality.freshness import judge, last_new_data
from orchestration.status import _overdue_feeds

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def test_the_rule_at_its_boundary():
    now = NOW.timestamp()
    assert not judge(now - 30 * 3600, 30, now).overdue  # exactly the allowed age: still fresh
    late = judge(now - 31 * 3600, 30, now)
    assert late.overdue and late.overdue_hours == 1.0 and late.age_hours == 31.0 and late.fresh_until is None
    fresh = judge(now - 6 * 3600, 30, now)
    assert fresh.fresh_until == now + 24 * 3600 and fresh.overdue_hours is None
    never = judge(None, 30, now)
    assert never.overdue and never.age_hours is None and never.overdue_hours is None


def _log(rows: list[tuple]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw")
    con.execute(
        "CREATE TABLE raw.ingestion_log (feed_id VARCHAR, status VARCHAR, rows_received BIGINT, "
        "finished_at TIMESTAMPTZ)"
    )
    con.executemany("INSERT INTO raw.ingestion_log VALUES (?, ?, ?, ?)", rows)
    return con


def test_status_lists_the_feeds_the_rule_finds_overdue(catalog):
    con = _log(
        [
            # daily feed (30 h allowed): new data 6 h ago, a later empty delivery is no new data
            ("egov_applications", "loaded", 12, "2026-11-22 06:00:00+00"),
            ("egov_applications", "loaded", 0, "2026-11-22 11:00:00+00"),
            # daily feed: its newest new data is 31 h old (a failed delivery since does not count)
            ("hotline_tickets", "superseded", 5, "2026-11-21 05:00:00+00"),
            ("hotline_tickets", "failed", 0, "2026-11-22 10:00:00+00"),
            # termly feed (4392 h * 1.25 allowed): delivered 100 days ago
            ("schools", "loaded", 7, "2026-08-14 12:00:00+00"),
        ]
    )
    assert last_new_data(con)["egov_applications"] == datetime(2026, 11, 22, 6, tzinfo=UTC)
    overdue = {f["feed"]: f for f in _overdue_feeds(con, NOW)}
    assert "egov_applications" not in overdue and "schools" not in overdue
    assert overdue["hotline_tickets"]["age_hours"] == 31.0
    assert overdue["hotline_tickets"]["last_delivery"] == "2026-11-21T05:00:00+00:00"
    never = {f.id for f in catalog.feeds} - {"egov_applications", "hotline_tickets", "schools"}
    assert never <= set(overdue) and all(overdue[f]["age_hours"] is None for f in never)
