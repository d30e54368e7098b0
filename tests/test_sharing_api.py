"""The sharing HTTP API on a real uvicorn server (loopback, own thread) over the access lake's published
tiers, called with urllib: token auth, pages with cursors, exports, SQL within the grant, limits, errors."""

from __future__ import annotations

import csv
import io
import json
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import date, timedelta

import pyarrow.parquet as pq
import pytest
import uvicorn

from citybrain.access import audit
from citybrain.publication import publish
from citybrain.sharing import accounts, applications, grants, tokens
from citybrain.sharing.api import create_app
from citybrain.sharing.config import Limits, SharingConfig
from citybrain.sharing.store import Store, utcnow
from tests.access_lake import CLASSIFICATION, access_lake
from tests.sharing_lake import VISIT_CODE, write_catalog

PASSWORD = "correct horse battery"
CONFIG = SharingConfig(
    limits=Limits(
        max_result_rows=8, max_page_size=4, max_export_rows=50, requests_per_minute=100, login_failures=3
    )
)


class Api:
    def __init__(self, base: str):
        self.base = base

    def call(self, method: str, path: str, token: str | None = None, body: dict | None = None, **params):
        query = urllib.parse.urlencode(params, doseq=True)
        request = urllib.request.Request(
            f"{self.base}{path}" + (f"?{query}" if query else ""),
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={
                "Content-Type": "application/json",
                **({"Authorization": f"Bearer {token}"} if token else {}),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def json(self, method, path, token=None, body=None, **params):
        status, _headers, content = self.call(method, path, token, body, **params)
        return status, json.loads(content)


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    home = tmp_path_factory.mktemp("sharing_api")
    with access_lake(home):
        store = Store(f"sqlite:///{home / 'sharing.db'}").create_all()
        resources = write_catalog(home / "catalog.json")
        consumer = accounts.create_account(store, "li_analyst", "CJJ", "consumer", PASSWORD)
        office = accounts.create_account(store, "chen_office", "SJJ", "data_office", PASSWORD)
        approver = accounts.create_account(store, "wang_wjw", "WJW", "provider_approver", PASSWORD)
        application = applications.apply(
            store, CONFIG, consumer, resources[VISIT_CODE], purpose="visits per district, health report",
            columns=["area_code", "visit_no"], row_filter_column="area_code", row_filter_values=["330106"],
            period_end=date.today() + timedelta(days=30),
        )  # fmt: skip
        applications.forward(store, CONFIG, office, application.id)
        decided = applications.decide(store, approver, application.id, "approve")
        port = _free_port()
        server = uvicorn.Server(
            uvicorn.Config(create_app(store, CONFIG), host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "the API server did not start"
            time.sleep(0.05)
        token = tokens.issue_token(store, consumer, "report tool").secret
        yield {"api": Api(f"http://127.0.0.1:{port}"), "store": store, "token": token, "consumer": consumer,
               "grant_id": decided.grant_id, "home": home}  # fmt: skip
        server.should_exit = True
        thread.join(10)
        store.engine.dispose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_lists_the_granted_resource_and_serves_openapi_docs(service):
    api = service["api"]
    status, body = api.json("GET", "/v1/resources", service["token"])
    assert status == 200 and body["account"] == "li_analyst"
    (granted,) = body["grants"]
    assert (granted["table"], granted["columns"], granted["row_filter"]) == (
        "pool.fct_visit", ["area_code", "visit_no"], {"column": "area_code", "values": ["330106"]})  # fmt: skip
    status, spec = api.json("GET", "/openapi.json")
    assert status == 200 and "/v1/query" in spec["paths"] and "/v1/tables/{table}/rows" in spec["paths"]
    assert api.call("GET", "/docs")[0] == 200


def test_pages_follow_the_cursor_through_the_granted_rows(service):
    api, token = service["api"], service["token"]
    seen, cursor, pages = [], None, 0
    while True:
        params = {"sort": "-visit_no", "limit": 4, **({"cursor": cursor} if cursor else {})}
        status, page = api.json("GET", "/v1/tables/fct_visit/rows", token, **params)
        assert status == 200, page
        seen += [row["visit_no"] for row in page["rows"]]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(range(18, -1, -2)) and pages == 3  # 10 granted rows (330106: even numbers), 4 a page
    status, page = api.json(
        "GET", "/v1/tables/fct_visit/rows", token, columns="visit_no", filter="visit_no:4"
    )
    assert (status, page["rows"]) == (200, [{"visit_no": 4}])
    status, body = api.json("GET", "/v1/tables/fct_visit/rows", token, cursor="bm90IGEgY3Vyc29y")
    assert (status, body["error"]) == (400, "bad_cursor")


def test_exports_csv_parquet_and_json_of_the_slice(service):
    api, token = service["api"], service["token"]
    status, headers, content = api.call(
        "GET", "/v1/tables/fct_visit/export", token, format="csv", sort="visit_no"
    )
    rows = list(csv.DictReader(io.StringIO(content.decode())))
    assert status == 200 and [int(r["visit_no"]) for r in rows] == list(range(0, 20, 2))
    assert set(rows[0]) == {"area_code", "visit_no"} and headers["x-pool-version"]
    status, _, content = api.call("GET", "/v1/tables/fct_visit/export", token, format="parquet")
    table = pq.read_table(io.BytesIO(content))
    assert status == 200 and table.num_rows == 10 and set(table.column("area_code").to_pylist()) == {"330106"}
    status, _, content = api.call(
        "GET", "/v1/tables/fct_visit/export", token, format="json", columns="visit_no"
    )
    assert status == 200 and sorted(r["visit_no"] for r in json.loads(content)) == list(range(0, 20, 2))


def test_sql_within_the_grant_and_refusals_that_leak_nothing(service):
    api, token = service["api"], service["token"]
    status, body = api.json(
        "POST", "/v1/query", token, {"sql": "SELECT count(*) AS n, sum(visit_no) AS s FROM fct_visit"}
    )
    assert (status, body["rows"]) == (200, [{"n": 10, "s": sum(range(0, 20, 2))}])
    refusals = {
        "SELECT person_pseudonym FROM pool.fct_visit": (403, "query_rejected"),
        "SELECT no_such_column FROM pool.fct_visit": (403, "query_rejected"),
        "SELECT visit_no FROM pool.fct_visit; DROP TABLE pool.fct_visit": (403, "query_rejected"),
        "SELECT * FROM read_csv('/etc/passwd')": (403, "query_rejected"),
        "SELECT * FROM pool.dim_area": (403, "query_rejected"),
        "SELECT visit_no FROM pool.fct_visit": (413, "too_large"),  # 10 rows > 8
        "SELECT visit_no::DATE FROM fct_visit": (
            400,
            "query_failed",
        ),  # the engine's error, without catalog names
    }
    for sql, expected in refusals.items():
        status, body = api.json("POST", "/v1/query", token, {"sql": sql})
        assert (status, body["error"]) == expected, (sql, body)
        assert "dim_person_raw" not in body["message"] and "citybrain_" not in body["message"]
        assert "residents" not in body["message"] and "area_name" not in body["message"]
    # An ungranted column and a column that does not exist get the same answer.
    _, ungranted = api.json("POST", "/v1/query", token, {"sql": "SELECT person_pseudonym FROM fct_visit"})
    _, missing = api.json("POST", "/v1/query", token, {"sql": "SELECT nonexistent FROM fct_visit"})
    assert ungranted["message"].replace("person_pseudonym", "X") == missing["message"].replace(
        "nonexistent", "X"
    )
    # An ungranted table and a table that does not exist: the same answer too.
    _, other = api.json("GET", "/v1/tables/dim_person_raw/rows", token)
    _, nothing = api.json("GET", "/v1/tables/nothing_here/rows", token)
    assert other["message"].replace("dim_person_raw", "X") == nothing["message"].replace("nothing_here", "X")
    status, body = api.json("GET", "/v1/tables/fct_visit/rows", token, columns="person_pseudonym")
    assert (status, body["error"]) == (403, "column_not_granted")
    reads = [r for r in audit.read_records() if r["action"] == "read" and r["user"] == "li_analyst"]
    assert reads and all(r["grant_id"] == service["grant_id"] for r in reads if r["outcome"] == "ok")


def test_tampered_expired_and_revoked_tokens_are_refused(service):
    api, store, consumer = service["api"], service["store"], service["consumer"]
    token = service["token"]
    tampered = token[:-2] + ("xy" if not token.endswith("xy") else "zz")
    expired = tokens.issue_token(store, consumer, "expired", expires_at=utcnow() + timedelta(seconds=1))
    with store.engine.begin() as con:
        con.execute(store.tokens.update().where(store.tokens.c.id == expired.id).values(expires_at=utcnow()))
    revoked = tokens.issue_token(store, consumer, "revoked")
    tokens.revoke_token(store, revoked.id, by="test")
    for bad in (tampered, expired.secret, revoked.secret, "Bearer", ""):
        status, body = api.json("GET", "/v1/resources", bad or None)
        assert status == 401 and body["error"] in ("invalid_token", "unauthenticated")


def test_rate_limit_per_token(service):
    api, store = service["api"], service["store"]
    token = tokens.issue_token(store, service["consumer"], "busy script").secret
    statuses = [
        api.call("GET", "/v1/resources", token)[0] for _ in range(CONFIG.limits.requests_per_minute + 1)
    ]
    assert statuses[:-1] == [200] * CONFIG.limits.requests_per_minute and statuses[-1] == 429
    assert api.call("GET", "/v1/resources", service["token"])[0] == 200  # another token is not affected


def test_login_gives_a_token_and_brute_force_is_throttled(service):
    api = service["api"]
    status, body = api.json("POST", "/v1/login", body={"name": "chen_office", "password": PASSWORD})
    assert status == 200 and api.json("GET", "/v1/resources", body["token"])[1]["grants"] == []
    for _ in range(CONFIG.limits.login_failures):
        assert api.json("POST", "/v1/login", body={"name": "wang_wjw", "password": "guess-1234567"})[0] == 401
    status, body = api.json("POST", "/v1/login", body={"name": "wang_wjw", "password": PASSWORD})
    assert (status, body["error"]) == (401, "login_failed")  # locked: the right password waits too


def test_a_cursor_keeps_its_version_while_a_publication_switches_the_live_one(service):
    api, token = service["api"], service["token"]
    status, first = api.json("GET", "/v1/tables/fct_visit/rows", token, sort="visit_no", limit=4)
    assert status == 200 and first["next_cursor"]
    publish(service["home"] / "warehouse.duckdb", "run-sharing-2", ["2026-10-06"], CLASSIFICATION)
    status, second = api.json("GET", "/v1/tables/fct_visit/rows", token, sort="visit_no", limit=4,
                              cursor=first["next_cursor"])  # fmt: skip
    assert status == 200 and second["version"] == first["version"]
    assert [r["visit_no"] for r in first["rows"] + second["rows"]] == [0, 2, 4, 6, 8, 10, 12, 14]
    status, fresh = api.json("GET", "/v1/tables/fct_visit/rows", token, sort="visit_no", limit=4)
    assert status == 200 and fresh["version"] != first["version"]


def test_after_expiry_or_revocation_nothing_is_served(service):
    api, store = service["api"], service["store"]
    token = tokens.issue_token(store, service["consumer"], "expiry check").secret
    assert api.json("POST", "/v1/query", token, {"sql": "SELECT count(*) AS n FROM fct_visit"})[0] == 200
    with store.engine.begin() as con:
        con.execute(store.grants.update().values(ends_at=utcnow() - timedelta(seconds=1)))
    try:
        status, body = api.json("POST", "/v1/query", token, {"sql": "SELECT count(*) AS n FROM fct_visit"})
        assert (status, body["error"]) == (403, "no_grants")
        assert api.json("GET", "/v1/tables/fct_visit/rows", token)[0] == 404
        assert api.json("GET", "/v1/resources", token)[1]["grants"] == []
    finally:
        with store.engine.begin() as con:
            con.execute(store.grants.update().values(ends_at=utcnow() + timedelta(days=30)))
    grants.revoke_grant(store, service["grant_id"], by="test")
    assert api.json("GET", "/v1/tables/fct_visit/rows", token)[0] == 404
