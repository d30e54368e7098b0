"""The sharing workflow in real headless Chromium (Debian's /usr/bin/chromium through Playwright) with every
request to another host aborted, as on an offline government network: a consumer applies for an open
resource in the portal, the provider's approver approves it in the inbox, the consumer issues a token on
"my grants and tokens", and that token reads the granted columns through the API and is refused the other.

Skips with the reason when /usr/bin/chromium is absent (`apt-get install -y chromium`); Playwright's own
browser download is not used.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import requests

from scripts.check_ui_in_browser import CHROMIUM, CHROMIUM_ARGS
from tests.portal_service import PASSWORD, portal_service
from tests.sharing_lake import AREA_CODE

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"{CHROMIUM} missing: `apt-get install -y chromium` (Debian's browser)"
)


def test_apply_approve_issue_token_and_read_offline_in_chromium(tmp_path):
    from playwright.sync_api import sync_playwright

    (tmp_path / "lake").mkdir()
    with portal_service(tmp_path / "lake") as portal, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(locale="zh-CN")
        blocked, served = [], []

        def offline(route):
            if urlsplit(route.request.url).hostname == "127.0.0.1":
                served.append(route.request.url)
                route.continue_()
            else:
                blocked.append(route.request.url)
                route.abort("internetdisconnected")

        context.route("**/*", offline)
        page = context.new_page()
        page.set_default_timeout(15_000)

        def log_in(name: str) -> None:
            page.fill("input[name=name]", name)
            page.fill("input[name=password]", PASSWORD)
            page.click("#login")
            page.wait_for_selector("#who")

        def log_out() -> None:
            page.click("form.who button")
            page.wait_for_selector("#login")

        # The consumer finds the resource in the catalog and applies for two of its three columns.
        page.goto(f"{portal.base}/portal/catalog")
        log_in("li_analyst")
        assert page.url.endswith("/portal/catalog")
        # The stylesheet applied, not only the page's HTML: read too early under load, the colour was unset.
        page.wait_for_load_state("load")
        header_colour = page.eval_on_selector("header.top", "e => getComputedStyle(e).backgroundColor")
        assert header_colour == "rgb(28, 93, 153)", "the local stylesheet did not load"
        page.click(f'tr[data-code="{AREA_CODE}"] a[href$="/resources/{AREA_CODE}"]')
        assert page.inner_text("#no-grant")
        page.click("#apply")
        page.fill("textarea[name=purpose]", "district names for the street-lighting map")
        page.check('input[name=columns][value="area_code"]')
        page.check('input[name=columns][value="area_name"]')
        page.click("#submit-application")
        application_id = page.inner_text("#applied").split("#")[1].split()[0]
        log_out()

        # The providing department's approver (SJJ provides dim_area, an open resource) approves it.
        log_in("sun_sjj")
        page.goto(f"{portal.base}/portal/inbox")
        section = f"#application-{application_id}"
        page.check(f'{section} input[name=decision][value="approve"]')
        page.click(f"{section} .decide-submit")
        page.wait_for_selector("#empty")
        log_out()

        # The consumer sees the sample rows of the grant and issues a token, shown once.
        log_in("li_analyst")
        page.goto(f"{portal.base}/portal/resources/{AREA_CODE}")
        assert page.eval_on_selector_all(
            "#samples table.sample th", "ths => ths.map(t => t.textContent)"
        ) == [
            "area_code",
            "area_name",
        ]
        page.goto(f"{portal.base}/portal/mine")
        page.fill("#issue-token input[name=label]", "street-lighting map")
        page.click("#issue")
        secret = page.inner_text("#token-secret").strip()
        page.screenshot(path=str(tmp_path / "token.png"), full_page=True)
        browser.close()

        assert not blocked, f"pages asked for other hosts: {blocked}"
        assert any(u.endswith("/portal/static/portal.css") for u in served)

        bearer = {"Authorization": f"Bearer {secret}"}
        rows = requests.get(f"{portal.base}/v1/tables/dim_area/rows", params={"sort": "area_code"},
                            headers=bearer, timeout=30)  # fmt: skip
        assert rows.status_code == 200, rows.text
        assert rows.json()["columns"] == ["area_code", "area_name"]
        assert rows.json()["rows"] == [
            {"area_code": "330106", "area_name": "西湖区"},
            {"area_code": "330108", "area_name": "滨江区"},
        ]
        for params in ({"columns": "residents"}, {"sort": "residents"}):
            refused = requests.get(
                f"{portal.base}/v1/tables/dim_area/rows", params=params, headers=bearer, timeout=30
            )
            assert refused.status_code == 403 and refused.json()["error"] == "column_not_granted"
        query = requests.post(f"{portal.base}/v1/query", json={"sql": "SELECT residents FROM pool.dim_area"},
                              headers=bearer, timeout=30)  # fmt: skip
        assert query.status_code == 403 and query.json()["error"] == "query_rejected"
