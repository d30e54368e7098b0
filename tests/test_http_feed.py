"""The API feed against a real HTTP server on loopback: pagination, retries on 500 and timeouts,
an HTML error page, and the ``updated_since`` cursor picking up late updates and nothing else."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from citybrain.ingest.http_feed import make_session
from citybrain.ingest.pipeline import ingest_http
from demo_city.hotline import COLUMNS
from demo_city.hotline_api import HotlineApiServer

DAY = "2026-11-20"


def ticket(n: int, updated_at: str, status: str = "受理", closed_at: str | None = None) -> dict:
    base = dict.fromkeys(COLUMNS)
    return base | {
        "ticket_id": f"T{n:05d}",
        "received_at": f"{DAY} 08:{n % 60:02d}:00",
        "channel": "电话",
        "category": "市容环境",
        "district_code": "330102",
        "description": "路灯不亮",
        "status": status,
        "closed_at": closed_at,
        "updated_at": updated_at,
    }


@pytest.fixture
def store(tmp_path: Path) -> Path:
    versions = [ticket(n, f"{DAY} 09:00:00") for n in range(1, 24)]
    versions.append(ticket(5, "2026-11-22 15:00:00", "已办结", "2026-11-22 15:00:00"))  # a late update
    store = tmp_path / "hotline_store"
    store.mkdir()
    (store / f"tickets_{DAY}.jsonl").write_text(
        "".join(json.dumps(v, ensure_ascii=False) + "\n" for v in versions), encoding="utf-8"
    )
    return store


@pytest.fixture
def feed(catalog):
    feed = catalog.feed("hotline_tickets")
    return feed.model_copy(update={"delivery": feed.delivery.model_copy(update={"page_size": 5})})


def rows(lake):
    con = duckdb.connect(str(lake / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(
            "SELECT ticket_id, status, _batch_id FROM raw.hotline_tickets ORDER BY _batch_id, ticket_id"
        ).fetchall()
    finally:
        con.close()


def fast_session():
    return make_session(retries=3, backoff_factor=0.01)


def test_pages_and_late_updates(lake, feed, store):
    warehouse = lake / "warehouse.duckdb"
    with HotlineApiServer(store, as_of=datetime(2026, 11, 21, 2, 0)) as server:
        first = ingest_http(feed, server.base_url, warehouse, DAY, "run-1", fast_session())
        assert not first.problems and first.rows_loaded == 23
        assert server.request_count == 5  # 23 tickets, 5 per page
        assert first.entries[0].source_file.endswith(f"/api/v1/tickets?date={DAY}")

        again = ingest_http(feed, server.base_url, warehouse, DAY, "run-2", fast_session())
        assert again.rows_loaded == 0  # nothing changed: nothing refetched

        server.as_of = None  # the late update becomes visible
        late = ingest_http(feed, server.base_url, warehouse, DAY, "run-3", fast_session())
    assert late.rows_loaded == 1
    assert [r for r in rows(lake) if r[2] == "run-3"] == [("T00005", "已办结", "run-3")]


def test_server_errors_and_timeouts_are_retried(lake, feed, store):
    with HotlineApiServer(store) as server:
        server.fail_next(2, status=500)
        server.delay_next(1, 2.0)
        result = ingest_http(
            feed,
            server.base_url,
            lake / "warehouse.duckdb",
            DAY,
            "run-1",
            fast_session(),
            timeout_seconds=0.5,
        )
        assert not result.problems and result.rows_loaded == 23
        assert server.request_count >= 5 + 2


def test_persistent_failure_names_the_url(lake, feed, store):
    with HotlineApiServer(store) as server:
        server.fail_next(50, status=503)
        result = ingest_http(feed, server.base_url, lake / "warehouse.duckdb", DAY, "run-1", fast_session())
    assert len(result.problems) == 1
    assert f"/api/v1/tickets?date={DAY}" in result.problems[0] and "page 1" in result.problems[0]
    con = duckdb.connect(str(lake / "warehouse.duckdb"), read_only=True)
    assert con.execute("SELECT status FROM raw.ingestion_log").fetchall() == [("failed",)]
    con.close()


def test_an_html_page_instead_of_json_is_a_clear_error(lake, feed, store):
    with HotlineApiServer(store) as server:
        server.fail_next(1, status=200)  # an HTML body with status 200, like a captive portal or proxy page
        result = ingest_http(
            feed, server.base_url, lake / "warehouse.duckdb", DAY, "run-1", make_session(retries=0)
        )
    assert "answer is not JSON" in result.problems[0]


def test_unreachable_api(lake, feed):
    result = ingest_http(
        feed,
        "http://127.0.0.1:9",
        lake / "warehouse.duckdb",
        DAY,
        "run-1",
        make_session(retries=1, backoff_factor=0.01),
    )
    assert "request failed after retries" in result.problems[0]
