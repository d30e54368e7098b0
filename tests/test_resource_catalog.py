"""The resource catalog (政务数据资源目录): built from the real source catalog and dbt manifest plus a small
hand-made run history (a publications log and a tiny warehouse), exported as CSV, JSON and HTML."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from citybrain.lineage.columns import COMPILED_STORE
from citybrain.reference.city import City
from citybrain.resource_catalog.build import (
    OPEN_TYPE,
    SHARE_TYPE,
    assign_codes,
    build_catalog,
    division_code,
    load_manifest,
    pool_models,
)
from citybrain.resource_catalog.export import (
    CSV_COLUMNS,
    ITEM_COLUMNS,
    export_resource_catalog,
    item_sources,
    read_json,
    render_html,
    write_export,
    write_files,
)
from citybrain.resource_catalog.history import latest_releases, load_history, publication_tables
from citybrain.settings import REPO_ROOT

MANIFEST_PATH = REPO_ROOT / "dbt_project" / "target" / "manifest.json"
CITY = City("示范市", "Demo city", ["330102", "330105"])
RUN_OLD, RUN_NEW = "aaaaaaaa-old", "bbbbbbbb-new"


@pytest.fixture(scope="module")
def manifest() -> dict:
    return load_manifest(MANIFEST_PATH)


@pytest.fixture
def export_lake(lake: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in (
        "CITYBRAIN_POOL_DIR",
        "CITYBRAIN_CATALOG_EXPORT_DIR",
        "CITYBRAIN_CITY",
        "CITYBRAIN_CATALOG_DIVISION_CODE",
    ):
        monkeypatch.delenv(var, raising=False)
    return lake


def write_history(home: Path, manifest: dict) -> tuple[Path, Path]:
    """publications.jsonl with an old single-file record and a newer per-tier record, and a warehouse
    with an ingestion log and expectation results of two runs."""
    tables = sorted(n.get("alias") or n["name"] for n in pool_models(manifest))
    first, rest = tables[0], tables[1:]
    pool = home / "pool"
    pool.mkdir(parents=True, exist_ok=True)
    records = [
        {
            "version": "20261120T010000000000Z_aaaaaaaa",
            "run_id": RUN_OLD,
            "published_at": "2026-11-20T01:00:00+00:00",
            "path": str(pool / "missing.duckdb"),
            "tables": {f"pool.{t}": 10 for t in tables},
        },
        {
            "version": "20261121T010000000000Z_bbbbbbbb",
            "run_id": RUN_NEW,
            "published_at": "2026-11-21T01:00:00+00:00",
            "paths": {"open": str(pool / "open" / "missing.duckdb")},
            "tables": {"open": {f"pool.{t}": 20 + i for i, t in enumerate(rest)}, "conditional": {}},
        },
    ]
    log = pool / "publications.jsonl"
    log.write_text("\n".join(json.dumps(r) for r in records) + "\nnot json\n", encoding="utf-8")

    warehouse = home / "warehouse.duckdb"
    con = duckdb.connect(str(warehouse))
    con.execute("CREATE SCHEMA raw; CREATE SCHEMA quality")
    con.execute(
        "CREATE TABLE raw.ingestion_log (feed_id VARCHAR, status VARCHAR, rows_loaded BIGINT, finished_at TIMESTAMPTZ)"
    )
    con.execute(
        "INSERT INTO raw.ingestion_log VALUES ('household_registry', 'loaded', 100, '2026-11-20 18:00:00+00'),"
        " ('household_registry', 'superseded', 90, '2026-11-19 18:00:00+00'),"
        " ('schools', 'loaded', 7, '2026-09-01 08:00:00+00'), ('schools', 'loaded', 3, '2026-09-02 08:00:00+00')"
    )
    con.execute(
        "CREATE TABLE quality.expectation_results (run_id VARCHAR, suite VARCHAR, severity VARCHAR, "
        "success BOOLEAN, evaluated_at TIMESTAMPTZ)"
    )
    rows = [
        (RUN_OLD, "raw.household_registry", "blocking", True, "2026-11-20 01:00:00+00"),
        (RUN_NEW, "raw.household_registry", "blocking", True, "2026-11-21 01:00:00+00"),
        (RUN_NEW, "raw.household_registry", "warning", False, "2026-11-21 01:00:00+00"),
        (RUN_NEW, f"pool.{rest[0]}", "blocking", True, "2026-11-21 01:00:00+00"),
        (RUN_NEW, f"pool.{rest[0]}", "blocking", True, "2026-11-21 01:00:00+00"),
        (RUN_OLD, f"pool.{first}", "blocking", False, "2026-11-20 01:00:00+00"),
        (RUN_OLD, f"pool.{first}", "blocking", True, "2026-11-20 01:00:00+00"),
        # a later run that failed its gate and never published: not the published version's score
        ("cccccccc-unpublished", f"pool.{first}", "blocking", True, "2026-11-22 01:00:00+00"),
    ]
    con.executemany("INSERT INTO quality.expectation_results VALUES (?, ?, ?, ?, ?)", rows)
    con.close()
    return log, warehouse


def test_publication_tables_reads_flat_and_tiered_records():
    assert publication_tables({"tables": {"pool.a": 3}}) == {"a": (3, ())}
    assert publication_tables({"tier": "open", "tables": {"pool.a": 3}}) == {"a": (3, ("open",))}
    tiered = publication_tables({"tables": {"open": {"pool.a": 3}, "conditional": {"pool.b": 4}}})
    assert tiered == {"a": (3, ("open",)), "b": (4, ("conditional",))}
    listed = publication_tables({"tiers": [{"tier": "open", "tables": {"pool.c": 5}}]})
    assert listed == {"c": (5, ("open",))}
    assert publication_tables({"version": "v"}) == {}
    releases = latest_releases(
        [
            {"version": "2", "published_at": "2026-02-01", "tables": {"pool.a": 2}},
            {"version": "1", "published_at": "2026-01-01", "tables": {"pool.a": 1, "pool.b": 1}},
        ]
    )
    assert releases["a"].version == "2" and releases["b"].version == "1"


def test_catalog_has_every_pool_model_and_feed_with_fields_from_history(export_lake, catalog, manifest):
    log, warehouse = write_history(export_lake, manifest)
    history = load_history(log, warehouse)
    built = build_catalog(catalog, manifest, CITY, history)
    # The files it was built from, named without the machine's directories (the catalog is a public page).
    assert built.sources == ["pool/publications.jsonl", "warehouse.duckdb"], built.sources
    html = write_export(built, export_lake / "public")["html"].read_text(encoding="utf-8")
    assert str(export_lake) not in html
    by_key = {r.key: r for r in built.resources}
    tables = sorted(n.get("alias") or n["name"] for n in pool_models(manifest))
    assert {f"feed:{f.id}" for f in catalog.feeds} | {f"pool:{t}" for t in tables} == set(by_key)
    assert len(built.resources) == len(catalog.feeds) + len(tables)

    for r in built.resources:
        for attr in ("code", "name", "summary", "provider", "provider_code", "format", "share_type",
                     "share_conditions", "open_type", "update_cycle", "quality_basis", "table"):  # fmt: skip
            assert getattr(r, attr), (r.key, attr)
        assert r.items and all(i.name and i.data_type for i in r.items), r.key

    # pool: the latest publication containing the table; its score from the publishing run
    first, second = tables[0], tables[1]
    assert by_key[f"pool:{first}"].row_count == 10
    assert by_key[f"pool:{first}"].version == "20261120T010000000000Z_aaaaaaaa"
    assert by_key[f"pool:{first}"].last_updated.startswith("2026-11-20")
    assert by_key[f"pool:{first}"].quality_score == 50.0
    assert by_key[f"pool:{second}"].row_count == 20
    assert by_key[f"pool:{second}"].last_updated.startswith("2026-11-21")
    assert by_key[f"pool:{second}"].quality_score == 100.0
    # feed: loaded deliveries only; score of the latest run that checked the suite
    registry = by_key["feed:household_registry"]
    assert registry.row_count == 100 and registry.last_updated.startswith("2026-11-20")
    assert registry.quality_score == 50.0 and "1/2" in registry.quality_basis
    assert by_key["feed:schools"].row_count == 10
    assert (
        by_key["feed:legal_entities"].row_count is None
        and by_key["feed:legal_entities"].quality_score is None
    )

    # data items come from the manifest (pool) and the source catalog (feeds)
    resident = by_key["pool:dim_resident"]
    assert [i.name for i in resident.items] == list(
        manifest["nodes"]["model.citybrain.dim_resident"]["columns"]
    )
    assert all(i.description_en for i in resident.items)
    assert {i.name: i.pii for i in registry.items}["id_number"] == "resident_id"
    # lineage: the feed lists the pool tables made from it, and the pool table its feeds
    assert resident.code in registry.related_codes and registry.code in resident.related_codes
    assert "公安局" in resident.source_providers
    assert by_key["feed:schools"].update_cycle == "每学期"
    assert by_key["feed:medical_facilities"].update_cycle == "每月"


def test_a_held_back_table_is_marked_stale_with_the_date_of_the_content_it_keeps(tmp_path, catalog, manifest):
    """The latest publication held pool.dim_district back (citybrain/staleness.py): its resource says so, and
    its last update is when the kept version was published, not the latest publication."""
    log = tmp_path / "publications.jsonl"
    hold = {
        "table": "dim_district", "whole": True, "reason": "blocking checks failed on what it is built from: "
        "raw.household_registry", "failed_checks": ["raw.household_registry"], "held_days": [],
        "stale_since": "2026-11-21T01:00:00+00:00", "kept_version": "v1",
    }  # fmt: skip
    records = [
        {"version": "v1", "published_at": "2026-11-20T01:00:00+00:00", "tables": {"open": {"pool.dim_district": 3}}},
        {"version": "v2", "published_at": "2026-11-21T01:00:00+00:00", "tables": {"open": {"pool.dim_district": 3}},
         "stale": {"pool.dim_district": hold}},
    ]  # fmt: skip
    log.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    built = build_catalog(catalog, manifest, CITY, load_history(log, tmp_path / "none.duckdb"))
    by_key = {r.key: r for r in built.resources}
    district = by_key["pool:dim_district"]
    assert district.last_updated == "2026-11-20T01:00:00+00:00"
    assert (
        "v1" in district.stale
        and "2026-11-21" in district.stale
        and "raw.household_registry" in district.stale
    )
    assert all(not r.stale for k, r in by_key.items() if k != "pool:dim_district")


def test_classification_maps_to_share_and_open_type(catalog, manifest):
    built = build_catalog(catalog, manifest, CITY)
    by_key = {r.key: r for r in built.resources}
    for node in pool_models(manifest):
        declared = node["config"]["meta"]["classification"]  # read from the manifest, not assumed
        r = by_key[f"pool:{node.get('alias') or node['name']}"]
        assert r.classification == declared
        assert (r.share_type, r.open_type) == (SHARE_TYPE[declared], OPEN_TYPE[declared])
    assert SHARE_TYPE == {"open": "无条件共享", "conditional": "有条件共享", "restricted": "不予共享"}
    assert OPEN_TYPE == {"open": "无条件开放", "conditional": "有条件开放", "restricted": "不予开放"}
    # a feed is as restricted as its most restricted column
    registry = by_key["feed:household_registry"]
    assert (registry.share_type, registry.open_type) == ("不予共享", "不予开放")
    assert "id_number" in registry.share_conditions
    facilities = by_key["feed:medical_facilities"]
    assert (facilities.share_type, facilities.open_type) == ("无条件共享", "无条件开放")
    conditional = next(r for r in built.resources if r.classification == "conditional")
    assert conditional.share_conditions not in ("", "无")


def test_codes_are_unique_stable_and_survive_new_resources(catalog, manifest):
    one = build_catalog(catalog, manifest, CITY)
    two = build_catalog(catalog, manifest, CITY)
    codes = [r.code for r in one.resources]
    assert len(set(codes)) == len(codes)
    assert codes == [r.code for r in two.resources]
    assert all(c.startswith("330100-") for c in codes)
    assert {r.code for r in one.resources if r.key == "feed:household_registry"} == {"330100-GA-0001"}
    # a resource added before the others does not renumber them once the registry holds their codes
    registry = {r.key: r.code for r in one.resources}
    wanted = [("feed:new_one", "GA")] + [(r.key, r.provider_code) for r in one.resources]
    again = assign_codes(wanted, "330100", registry)
    assert all(again[k] == v for k, v in registry.items())
    assert again["feed:new_one"] == "330100-GA-0002"


def test_division_code_follows_the_configured_counties(monkeypatch):
    monkeypatch.delenv("CITYBRAIN_CATALOG_DIVISION_CODE", raising=False)
    assert division_code(City("", "", ["110101", "110105"])) == "110100"
    assert division_code(City("", "", ["320506", "320412"])) == "320000"
    assert division_code(City("", "", ["310118", "320509", "330421"])) == "310100"  # cross-province
    monkeypatch.setenv("CITYBRAIN_CATALOG_DIVISION_CODE", "990000")
    assert division_code(City("", "", ["110101"])) == "990000"


def test_exports_csv_json_html(tmp_path, catalog, manifest):
    hostile = copy.deepcopy(manifest)
    node = hostile["nodes"]["model.citybrain.dim_district"]
    node["description"] = '区县维表 — <script>alert("x")</script> & "quoted"'
    next(iter(node["columns"].values()))["description"] = "代码 — <img src=x onerror=alert(1)>"
    built = build_catalog(catalog, hostile, CITY)
    files = write_files(built, tmp_path)

    assert files["csv"].read_bytes().startswith(b"\xef\xbb\xbf")
    table = pd.read_csv(files["csv"], encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert list(table.columns) == [h for h, _ in CSV_COLUMNS]
    for header in ("资源名称", "资源代码", "资源摘要", "资源提供方", "提供方代码", "数据项", "资源格式",
                   "共享类型", "共享条件", "开放类型", "更新周期", "最后更新时间", "记录数", "质量评分"):  # fmt: skip
        assert header in table.columns
    assert list(table["资源代码"]) == [r.code for r in built.resources]
    items = pd.read_csv(files["items_csv"], encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert list(items.columns) == [h for h, _ in ITEM_COLUMNS]
    assert len(items) == sum(len(r.items) for r in built.resources)

    assert read_json(files["json"]) == built

    html = files["html"].read_text(encoding="utf-8")
    for r in built.resources:
        assert f'id="r-{r.code}"' in html and r.name in html
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html or "&lt;script&gt;alert" in html
    assert "http://" not in html and "https://" not in html  # self-contained: no CDN


def test_export_without_any_history(export_lake, catalog, manifest):
    """A new lake: no publication, no warehouse. Every resource is listed, run fields are empty."""
    history = load_history(export_lake / "pool" / "publications.jsonl", export_lake / "warehouse.duckdb")
    built = build_catalog(catalog, manifest, CITY, history)
    assert all(
        r.last_updated is None and r.row_count is None and r.quality_score is None for r in built.resources
    )
    files = write_export(built, export_lake / "out")
    table = pd.read_csv(files["csv"], encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert set(table["记录数"]) == {""}
    assert "—" in files["html"].read_text(encoding="utf-8")


def test_write_export_keeps_the_previous_export(tmp_path, catalog, manifest):
    built = build_catalog(catalog, manifest, CITY)
    write_export(built, tmp_path)
    (tmp_path / "current" / "marker").write_text("first", encoding="utf-8")
    write_export(built, tmp_path)
    assert (tmp_path / "previous" / "marker").read_text(encoding="utf-8") == "first"
    assert not (tmp_path / "current" / "marker").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["current", "previous"]


def test_asset_and_cli_write_the_export(export_lake, manifest):
    from dagster import AssetKey, materialize

    from assets.resource_catalog import resource_catalog
    from assets.resources import PublicationResource, WarehouseResource
    from orchestration.cli import main

    write_history(export_lake, manifest)
    resources = {
        "warehouse": WarehouseResource(path=str(export_lake / "warehouse.duckdb")),
        "publication": PublicationResource(directory=str(export_lake / "pool")),
    }
    result = materialize([resource_catalog], resources=resources)
    assert result.success
    (event,) = result.asset_materializations_for_node("resource_catalog")
    assert event.asset_key == AssetKey(["resource_catalog"])
    out = export_lake / "catalog_export"
    exported = read_json(out / "current" / "resource_catalog.json")
    registry = json.loads((out / "resource_codes.json").read_text(encoding="utf-8"))
    assert registry == {r.key: r.code for r in exported.resources}
    assert any(r.row_count for r in exported.resources)

    assert main(["resources", "export", "--out", str(export_lake / "elsewhere")]) == 0
    again = read_json(export_lake / "elsewhere" / "current" / "resource_catalog.json")
    assert [r.code for r in again.resources] == [r.code for r in exported.resources]


@pytest.fixture(scope="module")
def compiled_enterprises(tmp_path_factory) -> dict:
    """The project's manifest with dim_enterprise and its parents compiled (compile renders SQL only)."""
    tmp = tmp_path_factory.mktemp("lineage")
    target = tmp / "target"
    env = {**os.environ, "CITYBRAIN_WAREHOUSE": str(tmp / "warehouse.duckdb"), "CITYBRAIN_HOME": str(tmp)}
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("dbt")), "compile", "--profiles-dir", ".", "--target-path", str(target),
         "--log-path", str(target), "--quiet", "--select", "+dim_enterprise"],
        cwd=REPO_ROOT / "dbt_project", env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads((target / "manifest.json").read_text(encoding="utf-8"))


# Written from the SQL (stg_legal_entities -> int_identity__enterprises -> dim_enterprise): name is the registry's
# name (halfwidth), entity_type and status pass through; enterprise_key is cb_uscc_normalize(uscc) and
# legal_representative desensitise(...), both masks in the lineage's reading (citybrain/governance/
# classification.py MASKING_FUNCTIONS: the normaliser nulls anything but an organisation's code), so neither shows
# a raw source.
def _expected_sources(code: str) -> dict[str, list[dict]]:
    def source(column: str) -> list[dict]:
        return [{"feed": "legal_entities", "column": column, "code": code}]

    return {
        "name": source("name"),
        "entity_type": source("entity_type"),
        "status": source("status"),
        "enterprise_key": [],
        "legal_representative": [],
    }


def test_pool_items_list_their_source_feed_columns(tmp_path, catalog, compiled_enterprises):
    origins = item_sources(compiled_enterprises, catalog, tmp_path / "no_store.json")
    built = build_catalog(catalog, compiled_enterprises, CITY, column_origins=origins)
    by_key = {r.key: r for r in built.resources}
    code = by_key["feed:legal_entities"].code
    items = {i.name: i.sources for i in by_key["pool:dim_enterprise"].items}
    assert {name: items[name] for name in _expected_sources(code)} == _expected_sources(code)
    assert all(not i.sources for r in built.resources if r.kind == "feed" for i in r.items)

    files = write_files(built, tmp_path / "out")
    assert read_json(files["json"]) == built
    rows = pd.read_csv(files["items_csv"], encoding="utf-8-sig", dtype=str, keep_default_na=False)
    row = rows[(rows["资源代码"] == by_key["pool:dim_enterprise"].code) & (rows["数据项名称"] == "name")]
    assert list(row["来源数据项"]) == ["legal_entities.name"]
    html = files["html"].read_text(encoding="utf-8")
    assert f'<a href="#r-{code}"><code>legal_entities.name</code></a>' in html


def test_the_export_reads_the_compiled_sql_the_dbt_steps_stored(export_lake, catalog, compiled_enterprises):
    """A parse-time manifest has no compiled SQL: the export reads the store the dbt steps write beside it."""
    parsed = copy.deepcopy(compiled_enterprises)
    store = {}
    for uid, node in parsed["nodes"].items():
        if node.get("compiled_code"):
            store[uid] = {"checksum": node["checksum"]["checksum"], "sql": node.pop("compiled_code")}
    project = export_lake / "project_target"
    project.mkdir()
    (project / "manifest.json").write_text(json.dumps(parsed), encoding="utf-8")
    (project / COMPILED_STORE).write_text(json.dumps(store), encoding="utf-8")

    no_runs = load_history(export_lake / "none.jsonl", export_lake / "none.duckdb")
    result = export_resource_catalog(
        export_lake / "out", history=no_runs, manifest_path=project / "manifest.json"
    )
    by_key = {r.key: r for r in result.catalog.resources}
    items = {i.name: i.sources for i in by_key["pool:dim_enterprise"].items}
    code = by_key["feed:legal_entities"].code
    assert {name: items[name] for name in _expected_sources(code)} == _expected_sources(code)
    (project / COMPILED_STORE).unlink()  # a lake whose dbt never ran: no sources, nothing invented
    again = export_resource_catalog(
        export_lake / "out", history=no_runs, manifest_path=project / "manifest.json"
    )
    assert all(not i.sources for r in again.catalog.resources for i in r.items)


CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} missing: `apt-get install -y chromium`")
def test_html_filter_in_browser(tmp_path, catalog, manifest):
    from playwright.sync_api import sync_playwright

    page_file = tmp_path / "catalog.html"
    built = build_catalog(catalog, manifest, CITY)
    page_file.write_text(render_html(built), encoding="utf-8")
    total = len(built.resources)
    restricted = sum(r.share_type == "不予共享" for r in built.resources)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(page_file.as_uri())
            visible = "tr.resource-row:not(.hidden)"
            assert page.locator(visible).count() == total
            page.select_option("#f-share", "不予共享")
            assert page.locator(visible).count() == restricted
            page.select_option("#f-share", "")
            page.fill("#q", "household_registry")
            assert 1 <= page.locator(visible).count() < total
            assert page.locator("section.resource:not(.hidden)").count() == page.locator(visible).count()
        finally:
            browser.close()


def test_history_falls_back_to_the_published_version_meta(tmp_path):
    """No readable warehouse: deliveries and check results come from the version file the log names."""
    version_file = tmp_path / "open" / "versions" / "v1.duckdb"
    version_file.parent.mkdir(parents=True)
    con = duckdb.connect(str(version_file))
    con.execute("CREATE SCHEMA meta")
    con.execute(
        "CREATE TABLE meta.deliveries AS SELECT 'schools' AS feed_id, 5::BIGINT AS rows_loaded, "
        "'2026-11-21 01:00:00+00'::TIMESTAMPTZ AS loaded_at"
    )
    con.execute(
        "CREATE TABLE meta.check_results AS SELECT 'r1' AS run_id, 'raw.schools' AS suite, 'blocking' AS severity, "
        "true AS success, '2026-11-21 01:00:00+00'::TIMESTAMPTZ AS evaluated_at"
    )
    con.close()
    log = tmp_path / "publications.jsonl"
    record = {
        "version": "v1",
        "run_id": "r1",
        "published_at": "2026-11-21",
        "paths": {"open": str(version_file)},
    }
    log.write_text(json.dumps({**record, "tables": {"open": {"pool.dim_grid": 4}}}) + "\n", encoding="utf-8")
    history = load_history(log, tmp_path / "no_warehouse.duckdb")
    assert history.feeds["schools"].rows == 5
    assert history.latest_score("raw.schools").pass_rate == 1.0
    assert history.tables["dim_grid"].rows == 4 and history.tables["dim_grid"].tiers == ("open",)
    assert str(version_file) in history.sources
