"""The sharing portal's pages on a real uvicorn server (loopback) over the access lake, driven like a browser
with a cookie jar: sessions and their cookie, CSRF refusals, catalog filters, the apply → forward → approve
workflow, sample rows within the grant only, tokens issued and revoked, and the data office's overview."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
import requests

from citybrain.resource_catalog.build import Resource
from citybrain.sharing import accounts, applications
from citybrain.sharing.grants import get_grant
from citybrain.sharing.portal.catalog_view import freshness
from tests.portal_service import CONFIG, PASSWORD, csrf_of, portal_service
from tests.sharing_lake import AREA_CODE, VISIT_CODE, _resource

IN_30_DAYS = (date.today() + timedelta(days=30)).isoformat()


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    with portal_service(tmp_path_factory.mktemp("portal")) as service:
        yield service


def _apply_for_visits(portal, client, **overrides) -> int:
    data = {"purpose": "visits per district for the health report", "columns": ["area_code", "visit_no"],
            "row_column": "area_code", "row_values": "330106", "until": IN_30_DAYS, "delivery": "api",
            **overrides}  # fmt: skip
    response = portal.post(client, f"/portal/apply/{VISIT_CODE}", f"/portal/apply/{VISIT_CODE}", data)
    assert response.status_code == 303, response.text
    return int(re.search(r"applied=(\d+)", response.headers["location"]).group(1))


def _section(html: str, section_id: str) -> str:
    match = re.search(rf'<section id="{section_id}">(.*?)</section>', html, re.S)
    assert match, f"no section {section_id}"
    return match.group(1)


def _decide(portal, client, application_id: int, **data) -> requests.Response:
    return portal.post(client, f"/portal/applications/{application_id}/decide", "/portal/inbox", data)


def test_pages_need_a_session_and_render_from_local_files(portal):
    anonymous = requests.Session()
    response = anonymous.get(f"{portal.base}/portal/catalog?tier=open", allow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/portal/login?next=%2Fportal%2Fcatalog%3Ftier%3Dopen"
    login = anonymous.get(f"{portal.base}/portal/login")
    assert login.status_code == 200 and "登录" in login.text and "Log in" in login.text
    assert "default-src 'none'; style-src 'self'" in login.headers["content-security-policy"]
    assert not re.search(r'(src|href)="(https?:)?//', login.text), "a page refers to another host"
    css = anonymous.get(f"{portal.base}/portal/static/portal.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


def test_login_sets_an_httponly_lax_cookie_and_logout_ends_the_session(portal):
    client = requests.Session()
    page = client.get(f"{portal.base}/portal/login")
    response = client.post(
        f"{portal.base}/portal/login",
        data={"csrf_token": csrf_of(page.text), "name": "li_analyst", "password": PASSWORD,
              "next": "//elsewhere.example/steal"},
        allow_redirects=False,
    )  # fmt: skip
    assert response.status_code == 303 and response.headers["location"] == "/portal/catalog"
    cookie = next(
        c for c in response.raw.headers.getlist("set-cookie") if c.startswith("cbl_portal_session=")
    )
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/portal" in cookie
    secret = client.cookies.get("cbl_portal_session")
    assert client.get(f"{portal.base}/portal/mine").status_code == 200
    portal.post(client, "/portal/logout", "/portal/mine", {})
    stolen = requests.Session()
    stolen.cookies.set("cbl_portal_session", secret)
    assert stolen.get(f"{portal.base}/portal/mine", allow_redirects=False).status_code == 303


def test_wrong_password_and_repeated_failures_are_refused(portal):
    accounts.create_account(portal.store, "guess_target", "CJJ", "consumer", PASSWORD)
    client = requests.Session()
    for _ in range(CONFIG.limits.login_failures):
        page = client.get(f"{portal.base}/portal/login")
        response = client.post(f"{portal.base}/portal/login", allow_redirects=False,
                               data={"csrf_token": csrf_of(page.text), "name": "guess_target", "password": "wrong guess!"})  # fmt: skip
        assert response.status_code == 401 and "cbl_portal_session" not in response.headers.get(
            "set-cookie", ""
        )
    page = client.get(f"{portal.base}/portal/login")
    response = client.post(f"{portal.base}/portal/login", allow_redirects=False,
                           data={"csrf_token": csrf_of(page.text), "name": "guess_target", "password": PASSWORD})  # fmt: skip
    assert response.status_code == 401  # locked: even the right password waits


def test_posts_without_the_right_csrf_token_are_refused(portal):
    anonymous = requests.Session()
    anonymous.get(f"{portal.base}/portal/login")
    no_token = anonymous.post(f"{portal.base}/portal/login", allow_redirects=False,
                              data={"name": "li_analyst", "password": PASSWORD})  # fmt: skip
    assert no_token.status_code == 403 and "cbl_portal_session" not in no_token.headers.get("set-cookie", "")
    li, zhao = portal.session("li_analyst"), portal.session("zhao_other")
    before = len(applications.list_applications(portal.store))
    form = {"purpose": "a cross-site request in li's name", "columns": "area_code", "until": IN_30_DAYS}
    for token in (None, "0" * 64, csrf_of(zhao.get(f"{portal.base}/portal/mine").text)):
        response = li.post(f"{portal.base}/portal/apply/{VISIT_CODE}", allow_redirects=False,
                           data={**form, **({"csrf_token": token} if token else {})})  # fmt: skip
        assert response.status_code == 403 and "表单校验失败" in response.text
    assert len(applications.list_applications(portal.store)) == before
    issued = li.post(f"{portal.base}/portal/tokens", data={"label": "forged"}, allow_redirects=False)
    assert issued.status_code == 403 and "cbl_" not in issued.text


def test_catalog_search_and_filters(portal):
    client = portal.session("li_analyst")

    def codes(**params) -> list[str]:
        page = client.get(f"{portal.base}/portal/catalog", params=params)
        assert page.status_code == 200
        return re.findall(r'<tr class="resource-row" data-code="([^"]+)"', page.text)

    assert codes() == [AREA_CODE, VISIT_CODE]
    assert codes(tier="open") == [AREA_CODE]
    assert codes(department="WJW") == [VISIT_CODE]
    assert codes(q="VISIT_NO") == [VISIT_CODE]  # a column name, any case
    assert codes(q="fct_visit", tier="open") == []
    assert codes(freshness="unknown") == [AREA_CODE, VISIT_CODE]  # the test catalog has no update dates
    assert codes(freshness="fresh") == []


def test_freshness_follows_the_update_cycle():
    """Late = older than the cycle plus a quarter of it (daily: 30 h, monthly: 31 days x 1.25 = 38.75 days),
    the same rule as `citybrain status` and the Dagster freshness check."""
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)

    def resource(cycle: str, updated: str | None, stale: str = "") -> Resource:
        r = _resource("c", "t", "open", "SJJ", ["a"])
        r.update_cycle_code, r.last_updated, r.stale = cycle, updated, stale
        return r

    assert freshness(resource("daily", "2026-12-01T06:01:00+00:00"), now) == "fresh"  # 29 h 59 min
    assert freshness(resource("daily", "2026-12-01T05:59:00+00:00"), now) == "late"  # 30 h 1 min
    assert freshness(resource("daily", "2026-12-01 14:00:00+08"), now) == "fresh"  # 06:00 UTC, 30 h: not yet
    assert freshness(resource("monthly", "2026-10-25"), now) == "fresh"  # 38.5 days
    assert freshness(resource("monthly", "2026-10-24"), now) == "late"  # 39.5 days
    assert freshness(resource("daily", "2026-12-01", stale="held back since 2026-11-20"), now) == "held"
    assert freshness(resource("irregular", "2026-01-01"), now) == "unknown"
    assert freshness(resource("daily", None), now) == "unknown"
    assert (
        freshness(resource("daily", "2026-12-02T11:00:00"), now.replace(tzinfo=None)) == "fresh"
    )  # naive: UTC


def test_apply_forward_approve_and_sample_rows_only_within_the_grant(portal):
    li, office, wang = (portal.session(n) for n in ("li_analyst", "chen_office", "wang_wjw"))
    application_id = _apply_for_visits(portal, li)
    mine = li.get(f"{portal.base}/portal/mine").text
    assert f'id="application-{application_id}"' in mine and "已提交" in mine

    inbox = wang.get(f"{portal.base}/portal/inbox").text  # conditional: the data office reviews first
    assert f'id="application-{application_id}"' in inbox
    assert f'/portal/applications/{application_id}/decide"' not in inbox
    early = _decide(portal, wang, application_id, decision="approve")
    assert early.status_code == 400 and "waits for the data office" in early.text

    forwarded = portal.post(office, f"/portal/applications/{application_id}/forward", "/portal/inbox", {})
    assert forwarded.status_code == 303
    sun = portal.session("sun_sjj")  # another department's approver
    assert f"application-{application_id}" not in sun.get(f"{portal.base}/portal/inbox").text
    foreign = _decide(portal, sun, application_id, decision="approve")
    assert foreign.status_code == 400 and "approves for SJJ" in foreign.text
    approved = _decide(portal, wang, application_id, decision="approve")
    assert approved.status_code == 303
    grant_id = applications.get_application(portal.store, application_id).grant_id
    assert grant_id is not None

    samples = _section(li.get(f"{portal.base}/portal/resources/{VISIT_CODE}").text, "samples")
    assert f'data-grant="{grant_id}"' in samples
    assert re.findall(r"<th>([^<]+)</th>", samples) == ["area_code", "visit_no"]
    cells = re.findall(r"<td>([^<]*)</td>", samples)
    assert cells[0::2] == ["330106"] * 10  # the granted rows only: 330106 has the even visits 0..18
    assert sorted(map(int, cells[1::2])) == list(range(0, 20, 2))
    assert "person_pseudonym" not in samples and not re.search(r"<td>p\d</td>", samples)

    others = _section(portal.session("zhao_other").get(f"{portal.base}/portal/resources/{VISIT_CODE}").text,
                      "samples")  # fmt: skip
    assert 'id="no-grant"' in others and "<td>" not in others


def test_decisions_need_reasons_and_narrowing_grants_less(portal):
    li, office, wang = (portal.session(n) for n in ("li_analyst", "chen_office", "wang_wjw"))
    application_id = _apply_for_visits(portal, li, purpose="<script>alert(1)</script> district totals")
    portal.post(office, f"/portal/applications/{application_id}/forward", "/portal/inbox", {})
    inbox = wang.get(f"{portal.base}/portal/inbox").text  # what a consumer wrote is shown as text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; district totals" in inbox and "<script>alert" not in inbox
    refused = _decide(portal, wang, application_id, decision="refuse", reason="")
    assert refused.status_code == 400 and "needs a reason" in refused.text
    narrowed = _decide(portal, wang, application_id, decision="narrow", reason="district totals suffice",
                       columns=["visit_no"], row_values="330106")  # fmt: skip
    assert narrowed.status_code == 303
    application = applications.get_application(portal.store, application_id)
    assert (application.status, application.reason) == ("narrowed", "district totals suffice")
    grant = get_grant(portal.store, application.grant_id)
    assert (grant.columns, grant.row_filter_values) == (("visit_no",), ("330106",))


def test_tokens_are_shown_once_read_the_grant_and_can_be_revoked(portal):
    li = portal.session("li_analyst")
    application_id = _apply_for_visits(portal, li)
    portal.post(
        portal.session("chen_office"), f"/portal/applications/{application_id}/forward", "/portal/inbox", {}
    )
    _decide(portal, portal.session("wang_wjw"), application_id, decision="approve")
    issued = portal.post(li, "/portal/tokens", "/portal/mine",
                         {"label": "report tool", "expires_days": "30", "application": str(application_id)})  # fmt: skip
    assert issued.status_code == 201
    secret = re.search(r'<code id="token-secret">(cbl_[^<]+)</code>', issued.text).group(1)
    assert secret not in li.get(f"{portal.base}/portal/mine").text  # shown once
    bearer = {"Authorization": f"Bearer {secret}"}
    rows = requests.get(f"{portal.base}/v1/tables/fct_visit/rows", headers=bearer, timeout=30)
    assert rows.status_code == 200 and rows.json()["columns"] == ["area_code", "visit_no"]
    refused = requests.get(f"{portal.base}/v1/tables/fct_visit/rows", params={"columns": "person_pseudonym"},
                           headers=bearer, timeout=30)  # fmt: skip
    assert refused.status_code == 403 and refused.json()["error"] == "column_not_granted"

    token_id = int(
        re.search(r'data-token="(\d+)"[^\n]*report tool', li.get(f"{portal.base}/portal/mine").text).group(1)
    )
    not_yours = portal.post(
        portal.session("zhao_other"), f"/portal/tokens/{token_id}/revoke", "/portal/mine", {}
    )
    assert not_yours.status_code == 404
    assert portal.post(li, f"/portal/tokens/{token_id}/revoke", "/portal/mine", {}).status_code == 303
    after = requests.get(f"{portal.base}/v1/resources", headers=bearer, timeout=30)
    assert after.status_code == 401 and after.json()["error"] == "invalid_token"


def test_the_data_office_sees_overdue_clocks_and_grants_ending_soon(portal):
    li = portal.session("li_analyst")
    soon = _apply_for_visits(portal, li, until=(date.today() + timedelta(days=5)).isoformat())
    office = portal.session("chen_office")
    portal.post(office, f"/portal/applications/{soon}/forward", "/portal/inbox", {})
    _decide(portal, portal.session("wang_wjw"), soon, decision="approve")
    ending_grant = applications.get_application(portal.store, soon).grant_id
    consumer = accounts.get_account(portal.store, name="li_analyst")
    late = applications.apply(
        portal.store, CONFIG, consumer, portal.resources[AREA_CODE], purpose="district names for a map",
        columns=["area_code"], period_end=date.today() + timedelta(days=60), today=date.today() - timedelta(days=20),
    )  # fmt: skip
    page = office.get(f"{portal.base}/portal/office")
    assert page.status_code == 200
    overdue = re.search(r'<table id="overdue">(.*?)</table>', page.text, re.S).group(1)
    expiring = re.search(r'<table id="expiring">(.*?)</table>', page.text, re.S).group(1)
    assert f'data-application="{late.id}"' in overdue and f'data-application="{soon}"' not in overdue
    assert f'data-grant="{ending_grant}"' in expiring
    assert portal.session("li_analyst").get(f"{portal.base}/portal/office").status_code == 403


def test_quality_trend_comes_from_the_run_history_and_shows_on_the_resource_page(portal):
    from citybrain.resource_catalog.build import QUALITY_TREND_RUNS, _quality_trend
    from citybrain.resource_catalog.export import read_json, write_json
    from citybrain.resource_catalog.history import RunHistory, SuiteScore

    runs = {f"run{n:02d}": SuiteScore("pool.dim_area", f"run{n:02d}", f"2026-11-{n:02d}T02:00:00", 8, 8 - n % 2, 0)
            for n in range(1, QUALITY_TREND_RUNS + 3)}  # fmt: skip
    trend = _quality_trend(RunHistory(scores={"pool.dim_area": runs}), "pool.dim_area")
    assert [t["run_id"] for t in trend] == [f"run{n:02d}" for n in range(3, QUALITY_TREND_RUNS + 3)]
    assert [t["score"] for t in trend[:2]] == [87.5, 100.0]  # run03: 7 of 8 passed; run04: 8 of 8

    path = portal.home / "catalog.json"
    catalog = read_json(path)
    next(r for r in catalog.resources if r.code == AREA_CODE).quality_trend = trend
    write_json(catalog, path)
    page = portal.session("li_analyst").get(f"{portal.base}/portal/resources/{AREA_CODE}").text
    table = re.search(r'<table id="quality-trend">(.*?)</table>', page, re.S).group(1)
    assert re.findall(r"<code>(run\d+)</code>", table) == [t["run_id"] for t in trend]
    assert '<meter min="0" max="100" low="90" high="99" optimum="100" value="87.5">' in table
