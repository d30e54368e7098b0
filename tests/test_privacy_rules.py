"""Grades (GB/T 43697-2024) and re-identification risk (GB/T 37964) at build time and at publication, each rule
with data that breaks it: a unique 90-year-old in a small district, an important column in the open tier,
a conditional table that declares no quasi-identifiers. Tiny in-process warehouses; the generated-lake check
of the real pool is in tests/test_pool_people.py (dim_resident) and test_demo_end_to_end.py (published)."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import duckdb
import pytest
import yaml

from citybrain.access import audit
from citybrain.dbt_paths import read_manifest
from citybrain.governance.classification import check_manifest
from citybrain.ingest.warehouse import run_sql, sql_text
from citybrain.publication import PublicationError, list_publications, publish, tier_path
from citybrain.settings import REPO_ROOT

K = 5  # the minimum these tests configure (their own privacy file)


@pytest.fixture(autouse=True)
def _settings(tmp_path, monkeypatch):
    monkeypatch.setenv("CITYBRAIN_AUDIT_DIR", str(tmp_path / "audit"))
    privacy = tmp_path / "privacy.yaml"
    privacy.write_text(f"small_cell_k: 10\nmin_equivalence_class: {K}\n", encoding="utf-8")
    monkeypatch.setenv("CITYBRAIN_PRIVACY", str(privacy))


def _column(tier: str, grade: str | None = "general") -> dict:
    meta = {"classification": tier, "pii": "none"}
    if grade is not None:
        meta["grade"] = grade
    return {"config": {"meta": meta}}


def _model(name: str, tier: str, columns: dict, grade: str | None = "general", **meta) -> dict:
    table_meta = {"classification": tier, **meta}
    if grade is not None:
        table_meta["grade"] = grade
    return {
        "resource_type": "model", "unique_id": f"model.t.{name}", "name": name, "alias": name, "schema": "pool",
        "columns": columns, "config": {"meta": table_meta}, "depends_on": {"nodes": []},
        "compiled_code": f"select 1 as x from (select 1) as {name}", "checksum": {"checksum": name},
    }  # fmt: skip


def _manifest() -> dict:
    """A people table (conditional, quasi-identifiers declared) and an open district table."""
    people_columns = {c: _column("conditional") for c in ("person_key", "sex", "age_band", "district_code")}
    return {
        "sources": {},
        "nodes": {
            "model.t.people": _model(
                "people", "conditional", people_columns,
                quasi_identifiers=["sex", "age_band", "district_code"],
            ),
            "model.t.districts": _model(
                "districts", "open", {c: _column("open") for c in ("district_code", "population")}
            ),
        },
    }  # fmt: skip


CLASSIFICATION = {"people": "conditional", "districts": "open"}


def _warehouse(path: Path, people: list[tuple[str, str, str]]) -> None:
    """pool.people from (sex, age_band, district_code) rows, one person each; pool.districts."""
    with duckdb.connect(str(path)) as con:
        run_sql(con, sql_text("schema.sql"))
        con.execute("CREATE SCHEMA IF NOT EXISTS pool")
        con.execute(
            "CREATE OR REPLACE TABLE pool.people (person_key VARCHAR, sex VARCHAR, age_band VARCHAR, "
            "district_code VARCHAR)"
        )
        con.executemany(
            "INSERT INTO pool.people VALUES (?, ?, ?, ?)",
            [(f"p{i}", *row) for i, row in enumerate(people)],
        )
        con.execute(
            "CREATE OR REPLACE TABLE pool.districts AS SELECT district_code, count(*) AS population "
            "FROM pool.people GROUP BY district_code"
        )


# A big district of 5-person classes, and a small district where everybody is in one class of 6.
K_ANONYMOUS = (
    [("F", "30-34", "330102")] * 5
    + [("M", "30-34", "330102")] * 5
    + [("M", "85+", "330102")] * 5
    + [(None, "40-44", "330127")] * 6  # NULL is a value: the six form one class
)
UNIQUE_ELDER = [*K_ANONYMOUS, ("M", "85+", "330127")]  # a unique 90-year-old in the small district


def _meta(path: Path, query: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(query).fetchall()


def test_a_unique_90_year_old_in_a_small_district_blocks_the_publication(tmp_path):
    warehouse, pool = tmp_path / "warehouse.duckdb", tmp_path / "pool"
    _warehouse(warehouse, K_ANONYMOUS)
    published = publish(warehouse, "run-1", [], CLASSIFICATION, directory=pool, manifest=_manifest())
    risk = published.reidentification["people"]
    assert (risk["records"], risk["classes"], risk["smallest_class"], risk["unique_records"]) == (21, 4, 5, 0)

    _warehouse(warehouse, UNIQUE_ELDER)
    with pytest.raises(PublicationError, match=r"pool\.people: smallest equivalence class 1 < 5") as refused:
        publish(warehouse, "run-2", [], CLASSIFICATION, directory=pool, manifest=_manifest())
    assert "1 unique" in str(refused.value) and "1 class(es) with 1 record(s)" in str(refused.value)
    assert [p["run_id"] for p in list_publications(pool)] == ["run-1"], "the previous version stays live"
    assert [r["run_id"] for r in audit.read_records() if r["outcome"] == "error"] == ["run-2"]

    # A larger minimum blocks what passed before: the number is read from the privacy file at publication.
    _warehouse(warehouse, K_ANONYMOUS)
    Path(os.environ["CITYBRAIN_PRIVACY"]).write_text("min_equivalence_class: 6\n", encoding="utf-8")
    with pytest.raises(PublicationError, match=r"smallest equivalence class 5 < 6"):
        publish(warehouse, "run-3", [], CLASSIFICATION, directory=pool, manifest=_manifest())


def test_the_risk_and_the_grades_are_recorded_in_meta_and_the_publication_log(tmp_path):
    warehouse, pool = tmp_path / "warehouse.duckdb", tmp_path / "pool"
    _warehouse(warehouse, K_ANONYMOUS + [("F", "60-64", "330102")] * 7)
    publish(warehouse, "run-1", [], CLASSIFICATION, directory=pool, manifest=_manifest())
    conditional = tier_path("conditional", pool)
    # Recomputed here with a plain GROUP BY over the published table.
    expected = _meta(
        conditional,
        "SELECT sum(n), count(*), min(n), count(*) FILTER (WHERE n = 1) FROM "
        "(SELECT count(*) AS n FROM pool.people GROUP BY sex, age_band, district_code)",
    )[0]
    assert expected == (28, 5, 5, 0)
    (row,) = _meta(
        conditional,
        "SELECT table_name, quasi_identifiers, records, equivalence_classes, smallest_class, unique_records, "
        "unique_share, classes_below_minimum, min_equivalence_class, meets_minimum FROM meta.reidentification_risk",
    )
    assert row == ("people", ["sex", "age_band", "district_code"], *expected, 0.0, 0, K, True)
    assert _meta(tier_path("open", pool), "SELECT count(*) FROM meta.reidentification_risk") == [(0,)]
    grades = _meta(
        conditional,
        "SELECT table_name, column_name, grade, grade_zh FROM meta.data_grades ORDER BY 2 NULLS FIRST",
    )
    assert grades[0] == ("people", None, "general", "一般数据") and len(grades) == 5
    (record,) = list_publications(pool)
    assert record["reidentification"]["people"]["smallest_class"] == 5
    assert record["grades"]["districts"] == {
        "grade": "general",
        "columns": {"district_code": "general", "population": "general"},
    }


def test_important_data_never_reaches_the_open_tier(tmp_path):
    warehouse, pool = tmp_path / "warehouse.duckdb", tmp_path / "pool"
    _warehouse(warehouse, K_ANONYMOUS)
    graded = _manifest()
    graded["nodes"]["model.t.districts"]["config"]["meta"]["grade"] = "important"
    with pytest.raises(PublicationError, match=r"districts: open table graded 重要数据 \(important\)"):
        publish(warehouse, "run-1", [], CLASSIFICATION, directory=pool, manifest=graded)
    column = _manifest()
    column["nodes"]["model.t.districts"]["columns"]["population"] = _column("open", "core")
    with pytest.raises(PublicationError, match=r"districts\.population: column graded 核心数据 \(core\)"):
        publish(warehouse, "run-2", [], CLASSIFICATION, directory=pool, manifest=column)
    # An important table is fine in the conditional tier, and is refused if its label moves it to open.
    conditional = _manifest()
    conditional["nodes"]["model.t.people"]["config"]["meta"]["grade"] = "important"
    publish(warehouse, "run-3", [], CLASSIFICATION, directory=pool, manifest=conditional)
    with pytest.raises(PublicationError, match=r"people: open table graded 重要数据"):
        publish(
            warehouse, "run-4", [], {**CLASSIFICATION, "people": "open"}, directory=pool, manifest=conditional
        )
    ungraded = _manifest()
    del ungraded["nodes"]["model.t.people"]["columns"]["sex"]["config"]["meta"]["grade"]
    with pytest.raises(PublicationError, match=r"people\.sex: meta\.grade is None"):
        publish(warehouse, "run-5", [], CLASSIFICATION, directory=pool, manifest=ungraded)
    assert [p["run_id"] for p in list_publications(pool)] == ["run-3"]


def test_a_conditional_table_without_quasi_identifiers_is_not_published(tmp_path):
    warehouse, pool = tmp_path / "warehouse.duckdb", tmp_path / "pool"
    _warehouse(warehouse, K_ANONYMOUS)
    undeclared = _manifest()
    del undeclared["nodes"]["model.t.people"]["config"]["meta"]["quasi_identifiers"]
    with pytest.raises(PublicationError, match=r"people: conditional table without meta\.quasi_identifiers"):
        publish(warehouse, "run-1", [], CLASSIFICATION, directory=pool, manifest=undeclared)


def rules(violations) -> set[tuple[str, str | None, str]]:
    return {(v.model, v.column, v.rule) for v in violations}


def test_the_build_check_catches_grades_and_quasi_identifiers():
    """The same rules before anything is published: citybrain.governance.classification.check_manifest."""
    clean = _manifest()
    assert check_manifest(clean, {"feeds": []}) == []
    broken = copy.deepcopy(clean)
    people, districts = broken["nodes"]["model.t.people"], broken["nodes"]["model.t.districts"]
    people["config"]["meta"]["quasi_identifiers"] = ["sex", "birth_year"]
    people["columns"]["age_band"]["config"]["meta"]["grade"] = "core"  # above its table's grade
    del people["columns"]["sex"]["config"]["meta"]["grade"]
    districts["columns"]["population"] = _column("open", "important")
    violations = check_manifest(broken, {"feeds": []})
    assert rules(violations) == {
        ("people", None, "quasi_identifiers"),
        ("people", None, "grade_below_column"),
        ("people", "sex", "missing_grade"),
        ("districts", "population", "graded_data_in_open_tier"),
        ("districts", None, "grade_below_column"),  # the table is general, its column important
    }
    assert "birth_year, not a column of the model" in " ".join(map(str, violations))
    del people["config"]["meta"]["quasi_identifiers"]
    (missing,) = [v for v in check_manifest(broken, {"feeds": []}) if v.rule == "quasi_identifiers"]
    assert "conditional record-level table without meta.quasi_identifiers" in str(missing)


def test_every_pool_model_is_graded_and_every_conditional_one_declares_quasi_identifiers():
    """The real project (parsed manifest, refreshed by prepare-and-package): a grade on every pool table and
    column, quasi-identifiers on every conditional table, nothing important or core in the open tier."""
    manifest = read_manifest()  # read again if another worker's dbt is rewriting it
    pool = [n for n in manifest["nodes"].values() if n["resource_type"] == "model" and n["schema"] == "pool"]
    assert pool
    for node in pool:
        meta = node["config"]["meta"]
        assert meta.get("grade") in ("general", "important", "core"), node["name"]
        assert all(c["config"]["meta"].get("grade") for c in node["columns"].values()), node["name"]
        if meta["classification"] == "open":
            assert meta["grade"] == "general", node["name"]
        if meta["classification"] == "conditional":
            assert isinstance(meta.get("quasi_identifiers"), list), node["name"]
            assert set(meta["quasi_identifiers"]) <= set(node["columns"]), node["name"]
    resident = next(n for n in pool if n["name"] == "dim_resident")
    assert resident["config"]["meta"]["quasi_identifiers"] == [
        "sex",
        "age_band",
        "school_stage",
        "district_code",
    ]


def test_dbt_suppresses_with_the_configured_minimum():
    """dim_resident's suppression (macros/k_anonymity.sql) takes k as a dbt var; it must be the number the
    publication check enforces (catalog/privacy.yaml)."""
    privacy = yaml.safe_load((REPO_ROOT / "catalog" / "privacy.yaml").read_text(encoding="utf-8"))
    project = yaml.safe_load((REPO_ROOT / "dbt_project" / "dbt_project.yml").read_text(encoding="utf-8"))
    assert project["vars"]["min_equivalence_class"] == privacy["min_equivalence_class"]


def test_the_resource_catalog_carries_grades_and_the_measured_risk(tmp_path):
    """Grades come from the manifest, the risk from the latest publication record of the table; all three
    exports show them."""
    import pandas as pd

    from citybrain.catalog import load_catalog
    from citybrain.reference.city import City
    from citybrain.resource_catalog.build import build_catalog, load_manifest
    from citybrain.resource_catalog.export import write_files
    from citybrain.resource_catalog.history import load_history

    manifest = load_manifest(REPO_ROOT / "dbt_project" / "target" / "manifest.json")
    risk = {"records": 1000, "classes": 90, "smallest_class": 6, "unique_records": 0, "unique_share": 0.0,
            "min_equivalence_class": 5, "quasi_identifiers": ["sex", "age_band", "school_stage", "district_code"]}  # fmt: skip
    log = tmp_path / "publications.jsonl"
    records = [
        {"version": "v1", "run_id": "r1", "published_at": "2026-11-20T01:00:00+00:00",
         "tables": {"conditional": {"pool.dim_resident": 1000, "pool.fct_hotline_ticket": 5}},
         "reidentification": {"dim_resident": {**risk, "smallest_class": 1, "unique_records": 3}}},
        {"version": "v2", "run_id": "r2", "published_at": "2026-11-21T01:00:00+00:00",
         "tables": {"conditional": {"pool.dim_resident": 1000}}, "reidentification": {"dim_resident": risk}},
    ]  # fmt: skip
    log.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    city = City(counties=["330102"], name_zh="测试市", name_en="Test City")
    built = build_catalog(load_catalog(), manifest, city, load_history(log))
    by_key = {r.key: r for r in built.resources}
    resident = by_key["pool:dim_resident"]
    assert resident.grade == "important" and {i.grade for i in resident.items} == {"general"}
    assert (resident.smallest_equivalence_class, resident.unique_share) == (6, 0.0)  # the latest record
    assert "最小等价类 6（要求≥5，k-匿名）" in resident.reidentification_risk
    assert "无准标识符" in by_key["pool:fct_hotline_ticket"].reidentification_risk
    assert by_key["pool:dim_district"].grade == "general" and by_key["feed:household_registry"].grade == ""

    files = write_files(built, tmp_path / "export")
    table = pd.read_csv(files["csv"], encoding="utf-8-sig", dtype=str, keep_default_na=False)
    row = table.set_index("存储位置").loc["pool.dim_resident"]
    assert row["数据级别"] == "重要数据 (important)" and "最小等价类 6" in row["重标识风险"]
    items = pd.read_csv(files["items_csv"], encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert set(items.loc[items["资源名称"] == resident.name, "数据级别"]) == {"一般数据 (general)"}
    assert json.loads(files["json"].read_text(encoding="utf-8"))["resources"][-1]["grade"] in (
        "general",
        "important",
    )
    html = files["html"].read_text(encoding="utf-8")
    assert "重要数据 (important)" in html and "最小等价类 6" in html
