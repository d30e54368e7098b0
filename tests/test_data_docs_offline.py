"""GX Data Docs render offline: every CDN file GX links is vendored (citybrain/quality/data_docs_assets.yaml),
the pages a build writes are pointed at the local copies, and in headless Chromium with every network
request aborted the index lists the validation results — which it does not with the CDN links.

The Chromium test needs the assets `make setup` fetches from npm, and Debian's /usr/bin/chromium (it skips
with the reason when the browser is absent).
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

from citybrain.quality import docs_assets
from citybrain.quality.docs_assets import load_manifest, localize_html
from scripts.check_ui_in_browser import CHROMIUM, CHROMIUM_ARGS

GX_TEMPLATES = Path(__import__("great_expectations").__file__).parent / "render" / "view" / "templates"
LOADED = re.compile(r"<(?:script|link)\b[^>]*?(?:src|href)=\"(https?://[^\"]+)\"", re.IGNORECASE)
RESULTS_ROWS = "table.ge-index-page-validation-results-table tbody tr"


def test_every_file_gx_loads_from_a_cdn_is_vendored():
    manifest = load_manifest()
    vendored = {a.url for a in manifest.assets}
    loaded = {url for page in GX_TEMPLATES.glob("*.j2") for url in LOADED.findall(page.read_text())}
    assert loaded and loaded <= vendored, f"GX loads files the manifest does not vendor: {loaded - vendored}"
    assert f'"{manifest.images_url}"' in (GX_TEMPLATES / "top_navbar.j2").read_text()


def test_pages_at_any_depth_point_at_the_site_static_folder():
    manifest = load_manifest()
    site = Path("/site")
    page = site / "validations" / "raw" / "people" / "run" / "20261202T000000Z" / "whole_table.html"
    html = (
        '<script src="https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js" '
        'integrity="sha384-abc" crossorigin="anonymous"></script>\n'
        '<script src="https://cdn.jsdelivr.net/npm/vega@5"></script>\n'
        '<img src="https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/logo-long.png?d=123">\n'
        '<a href="https://greatexpectations.io">GX</a>'
    )
    up = "../" * 5  # validations/raw/people/run/<time>/ -> the site root
    assert localize_html(html, page, site, manifest) == (
        f'<script src="{up}static/vendor/bootstrap@4.3.1/dist/js/bootstrap.min.js"></script>\n'
        f'<script src="{up}static/vendor/vega@5.33.1/build/vega.min.js"></script>\n'
        f'<img src="{up}static/images/logo-long.png">\n'
        '<a href="https://greatexpectations.io">GX</a>'  # a link is not loaded: left alone
    )


def _build_site(home: Path, monkeypatch, assets: Path) -> Path:
    """Validate a small table with GX and build the Data Docs of it under ``home``."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    from citybrain.quality.data_docs import update_data_docs
    from citybrain.quality.gx_duckdb import warehouse_batches
    from citybrain.quality.suites import SuiteSpec
    from citybrain.quality.validate import SuiteRun

    monkeypatch.setenv("CITYBRAIN_HOME", str(home))
    monkeypatch.setenv(docs_assets.ASSETS_ENV, str(assets))
    home.mkdir(parents=True)
    warehouse = home / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "CREATE SCHEMA raw; CREATE TABLE raw.people AS SELECT range::VARCHAR AS id, "
            "CASE WHEN range = 3 THEN NULL ELSE 'x' END AS name FROM range(10)"
        )
    expectations = [
        gxe.ExpectColumnValuesToNotBeNull(column="name"),
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
    ]
    with warehouse_batches(warehouse) as batches:
        result = batches.batch("SELECT * FROM raw.people").validate(
            gx.ExpectationSuite(name="raw.people", expectations=[e.copy() for e in expectations])
        )
    run = SuiteRun(SuiteSpec(dataset="raw.people", expectations=[]), None, [], result, expectations)
    return update_data_docs("run-offline", [run])


def _results_offline(index: Path) -> tuple[list[str], list[str]]:
    """The index's validation-result rows in Chromium with the network cut, and every URL it asked for."""
    from playwright.sync_api import sync_playwright

    requested = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context()
        context.route(
            "**/*",
            lambda route: route.continue_() if route.request.url.startswith("file:") else route.abort("internetdisconnected"),
        )  # fmt: skip
        page = context.new_page()
        page.on("request", lambda request: requested.append(request.url))
        page.goto(index.as_uri(), wait_until="load")
        page.wait_for_timeout(300)  # bootstrap-table draws on document ready
        rows = page.eval_on_selector_all(RESULTS_ROWS, "rows => rows.map(r => r.innerText)")
        browser.close()
    return rows, [u for u in requested if not u.startswith("file:")]


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"{CHROMIUM} missing: `apt-get install -y chromium` (Debian's browser)"
)
def test_the_data_docs_index_lists_validation_results_offline(tmp_path, monkeypatch):
    assets = docs_assets.assets_dir()
    assert docs_assets.ready(assets), f"no vendored Data Docs assets at {assets}: run `make setup`"
    index = _build_site(tmp_path / "local", monkeypatch, assets)
    html = index.read_text(encoding="utf-8")
    assert not LOADED.search(html), "the index still loads a file from another host"
    assert (index.parent / "static" / "vendor" / "jquery@3.7.1" / "dist" / "jquery.min.js").exists()
    rows, external = _results_offline(index)
    assert len(rows) == 1 and "raw.people" in rows[0] and "run-offline" in rows[0], rows
    assert external == []

    # The same site with GX's CDN links (no vendored assets): offline, the index lists nothing.
    index = _build_site(tmp_path / "cdn", monkeypatch, tmp_path / "no-assets")
    rows, external = _results_offline(index)
    assert rows == [] and any("code.jquery.com" in u for u in external)
