"""The demo hotline API, against a real server on loopback: paging, cursors, as_of and failure knobs."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
import requests

from demo_city.hotline import COLUMNS
from demo_city.hotline_api import HotlineApiServer

DAY = "2026-11-20"


def _version(i: int, version: int, updated_at: str, status: str, closed_at: str | None = None) -> dict:
    return {
        "ticket_id": f"RX20261120{i:06d}",
        "received_at": f"{DAY} 08:{i:02d}:00",
        "channel": "电话",
        "category": "噪音扰民",
        "district_code": "330106",
        "description": "夜间施工噪音",
        "caller_phone": "13800000000",
        "handling_unit": "西湖区生态环境分局",
        "status": status,
        "closed_at": closed_at,
        "updated_at": updated_at,
        "version": version,
    }


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """25 tickets received on DAY; the odd ones close that evening; ticket 3 gets a late update two days later."""
    lines = []
    for i in range(1, 26):
        lines.append(_version(i, 1, f"{DAY} 08:{i:02d}:00", "受理"))
        if i % 2:
            lines.append(_version(i, 2, f"{DAY} 20:{i:02d}:00", "已办结", f"{DAY} 20:{i:02d}:00"))
    lines.append(_version(3, 3, "2026-11-22 09:00:00", "已办结", f"{DAY} 20:03:00"))
    lines.append(
        _version(1, 1, "2026-11-21 09:00:00", "受理")
        | {"ticket_id": "RX20261121000001", "received_at": "2026-11-21 09:00:00"}
    )
    (tmp_path / "tickets_20261120.jsonl").write_text(
        "".join(json.dumps(v, ensure_ascii=False) + "\n" for v in lines), "utf-8"
    )
    return tmp_path


@pytest.fixture
def api(store: Path):
    with HotlineApiServer(store) as server:
        yield server


def _get(api: HotlineApiServer, **params) -> requests.Response:
    return requests.get(api.base_url + "/api/v1/tickets", params=params, timeout=5)


def test_pages_cover_the_day_in_cursor_order(api):
    first = _get(api, date=DAY, page=1, page_size=10)
    assert first.status_code == 200 and first.headers["Content-Type"].startswith("application/json")
    body = first.json()
    assert (body["date"], body["page"], body["page_size"], body["total"], body["total_pages"]) == (
        DAY,
        1,
        10,
        25,
        3,
    )
    rows = (
        body["data"]
        + _get(api, date=DAY, page=2, page_size=10).json()["data"]
        + _get(api, date=DAY, page=3, page_size=10).json()["data"]
    )
    assert len(rows) == 25 and len({r["ticket_id"] for r in rows}) == 25
    assert [(r["updated_at"], r["ticket_id"]) for r in rows] == sorted(
        (r["updated_at"], r["ticket_id"]) for r in rows
    )
    assert all(list(r) == COLUMNS and all(v is None or isinstance(v, str) for v in r.values()) for r in rows)
    beyond = _get(api, date=DAY, page=4, page_size=10).json()
    assert beyond["data"] == [] and beyond["total"] == 25
    # latest versions are served: ticket 3 with its late update, ticket 2 still open
    latest = {r["ticket_id"]: r for r in rows}
    assert latest["RX20261120000003"]["updated_at"] == "2026-11-22 09:00:00"
    assert latest["RX20261120000002"]["status"] == "受理" and latest["RX20261120000002"]["closed_at"] is None
    assert _get(api, date="2026-11-21").json()["total"] == 1


def test_updated_since_returns_only_later_versions(api):
    body = _get(api, date=DAY, updated_since=f"{DAY} 20:00:00", page_size=100).json()
    assert body["total"] == 13 and all(r["updated_at"] > f"{DAY} 20:00:00" for r in body["data"])
    late = _get(api, date=DAY, updated_since=f"{DAY} 23:59:59").json()["data"]
    assert [r["ticket_id"] for r in late] == ["RX20261120000003"]
    assert _get(api, date=DAY, updated_since="2026-11-22T09:00:00").json()["total"] == 0


def test_as_of_serves_the_versions_known_then(api):
    api.as_of = datetime(2026, 11, 20, 12, 0, 0)
    rows = _get(api, date=DAY, page_size=100).json()["data"]
    assert len(rows) == 25 and {r["status"] for r in rows} == {"受理"}
    api.as_of = datetime(2026, 11, 20, 8, 5, 0)
    assert _get(api, date=DAY).json()["total"] == 5  # tickets not yet received are not served
    api.as_of = datetime(2026, 11, 21, 0, 0, 0)
    rows = {r["ticket_id"]: r for r in _get(api, date=DAY, page_size=100).json()["data"]}
    assert rows["RX20261120000003"]["updated_at"] == f"{DAY} 20:03:00"
    api.as_of = None
    rows = {r["ticket_id"]: r for r in _get(api, date=DAY, page_size=100).json()["data"]}
    assert rows["RX20261120000003"]["updated_at"] == "2026-11-22 09:00:00"


def test_fail_next_and_request_count(api):
    before = api.request_count
    api.fail_next(2, status=503)
    for _ in range(2):
        r = _get(api, date=DAY)
        assert (
            r.status_code == 503 and r.headers["Content-Type"].startswith("text/html") and "<html>" in r.text
        )
    assert _get(api, date=DAY).status_code == 200
    assert api.request_count == before + 3


def test_delay_next_provokes_client_timeouts(api):
    api.delay_next(1, 1.0)
    with pytest.raises(requests.Timeout):
        requests.get(api.base_url + "/api/v1/tickets", params={"date": DAY}, timeout=0.2)
    assert _get(api, date=DAY).status_code == 200


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"date": "20261120"},
        {"date": "2026-13-01"},
        {"date": DAY, "page": "0"},
        {"date": DAY, "page": "x"},
        {"date": DAY, "page_size": "0"},
        {"date": DAY, "page_size": "100000"},
        {"date": DAY, "updated_since": "yesterday"},
    ],
)
def test_bad_parameters_are_400_json(api, params):
    r = requests.get(api.base_url + "/api/v1/tickets", params=params, timeout=5)
    assert r.status_code == 400 and "error" in r.json()


def test_unknown_path_is_404(api):
    assert requests.get(api.base_url + "/api/v2/nothing", timeout=5).status_code == 404


def test_module_main_serves_until_killed(store):
    proc = subprocess.Popen(
        [sys.executable, "-m", "demo_city.hotline_api", "--store", str(store), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        base = line.split(" on ", 1)[1].split("/api/", 1)[0]
        assert requests.get(base + "/api/v1/tickets", params={"date": DAY}, timeout=5).json()["total"] == 25
    finally:
        proc.terminate()
        proc.wait(timeout=10)
