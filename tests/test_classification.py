"""The build-time classification check (citybrain/governance/classification.py, docs/GOVERNANCE.md):
small synthetic manifests for each rule, then the real project, compiled, is clean."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from citybrain.catalog import load_catalog
from citybrain.governance.classification import check_built, check_manifest, column_lineage
from citybrain.settings import REPO_ROOT

CATALOG = {
    "feeds": [
        {
            "id": "people",
            "columns": [
                {"name": "id_number", "classification": "restricted", "pii": "resident_id"},
                {"name": "name", "classification": "restricted", "pii": "person_name"},
                {"name": "sex", "classification": "conditional"},
                {"name": "district", "classification": "open"},
            ],
        }
    ]
}


def _column(tier="open", pii="none"):
    return {"config": {"meta": {"classification": tier, "pii": pii, "grade": "general"}}}


def manifest(pool_sql: str, columns: dict, tier: str = "conditional", staging_sql: str | None = None) -> dict:
    """raw.people -> staging.stg_people -> pool.people_pool; ``pool_sql`` selects from the staging view."""
    staging_sql = staging_sql or (
        'with source as (select * from "wh"."raw"."people") '
        "select id_number, name, sex, district, _loaded_at from source"
    )
    return {
        "sources": {
            "source.cb.raw.people": {"schema": "raw", "name": "people", "identifier": "people", "columns": {}}
        },
        "nodes": {
            "model.cb.stg_people": {
                "resource_type": "model", "name": "stg_people", "schema": "staging", "alias": "stg_people",
                "depends_on": {"nodes": ["source.cb.raw.people"]}, "compiled_code": staging_sql,
                "checksum": {"checksum": "s1"}, "columns": {}, "config": {"meta": {}},
            },
            "model.cb.people_pool": {
                "resource_type": "model", "name": "people_pool", "schema": "pool", "alias": "people_pool",
                "depends_on": {"nodes": ["model.cb.stg_people"]}, "compiled_code": pool_sql,
                "checksum": {"checksum": "p1"}, "columns": columns,
                "config": {"meta": {"classification": tier, "grade": "general", "quasi_identifiers": []}},
            },
        },
    }  # fmt: skip


def rules(violations) -> set[tuple[str | None, str]]:
    return {(v.column, v.rule) for v in violations}


def test_restricted_column_selected_raw_is_a_violation():
    m = manifest(
        'select s.name as person, sex from "wh"."staging"."stg_people" as s',
        {"person": _column("conditional", "person_name"), "sex": _column("conditional")},
    )
    violations = check_manifest(m, CATALOG)
    assert rules(violations) == {("person", "unmasked_restricted_pii")}
    assert "raw.people.name" in str(violations[0])


def test_through_a_masking_function_is_clean():
    m = manifest(
        "select cb_mask_name(name) as person, cb_pseudonym(id_number) as person_key, sex,"
        " count(distinct id_number) over () as people"
        ' from (select * from "wh"."staging"."stg_people") as s',
        {
            "person": _column("conditional", "person_name"),
            "person_key": _column("conditional", "resident_id"),
            "sex": _column("conditional"),
            "people": _column("open"),
        },
    )
    assert check_manifest(m, CATALOG) == []


def test_lineage_follows_ctes_stars_unions_and_case_branches():
    m = manifest(
        'with a as (select * exclude (sex) from "wh"."staging"."stg_people"), '
        "b as (select district, name as label from a union all select district, 'x' from a) "
        "select district, case when district = '1' then label end as label_out from b",
        {"district": _column("open"), "label_out": _column("open")},
        tier="open",
    )
    assert rules(check_manifest(m, CATALOG)) == {("label_out", "unmasked_restricted_pii")}
    relation = column_lineage(m, CATALOG, ["model.cb.people_pool"])["model.cb.people_pool"]
    assert {o.column for o in relation.get("label_out")} == {"name", "district"}


def test_restricted_model_may_hold_raw_values():
    m = manifest(
        'select id_number from "wh"."staging"."stg_people"', {"id_number": _column("restricted", "resident_id")},
        tier="restricted",
    )  # fmt: skip
    assert check_manifest(m, CATALOG) == []


def test_missing_and_inconsistent_classification():
    m = manifest(
        'select sex, district, id_number is null as no_id from "wh"."staging"."stg_people"',
        {
            "sex": {"config": {"meta": {}}},
            "district": _column("open", "telepathy"),
            "no_id": _column("open"),  # IS NULL tests carry no value lineage
        },
        tier="open",
    )
    assert rules(check_manifest(m, CATALOG)) == {
        ("sex", "missing_classification"),
        ("sex", "missing_grade"),  # an empty meta lacks its grade too
        ("district", "missing_classification"),
    }
    m["nodes"]["model.cb.people_pool"]["columns"]["sex"] = _column("open")
    m["nodes"]["model.cb.people_pool"]["columns"]["district"] = _column("open")
    assert rules(check_manifest(m, CATALOG)) == {("sex", "column_below_source")}
    m["nodes"]["model.cb.people_pool"]["columns"]["sex"] = _column("conditional")
    assert rules(check_manifest(m, CATALOG)) == {(None, "tier_mismatch")}  # open model, conditional column
    del m["nodes"]["model.cb.people_pool"]["config"]["meta"]["classification"]
    assert (None, "missing_classification") in rules(check_manifest(m, CATALOG))


def test_a_build_step_takes_upstream_sql_from_earlier_steps(tmp_path):
    """A Dagster step builds part of the project: its manifest lacks the staging SQL, which the store of
    an earlier step (or a compile) provides; without either the model is reported, not passed."""
    m = manifest('select name as person from "wh"."staging"."stg_people"', {"person": _column("conditional")})
    store = tmp_path / "store.json"
    earlier = copy.deepcopy(m)
    del earlier["nodes"]["model.cb.people_pool"]["compiled_code"]
    assert check_built(earlier, CATALOG, store) == []  # no pool model built: nothing to trace
    later = copy.deepcopy(m)
    del later["nodes"]["model.cb.stg_people"]["compiled_code"]
    assert rules(check_built(later, CATALOG, store)) == {("person", "unmasked_restricted_pii")}
    assert rules(check_built(later, CATALOG, tmp_path / "empty.json")) == {(None, "lineage_unknown")}
    calls = []
    assert rules(
        check_built(later, CATALOG, tmp_path / "other.json", lambda names: calls.append(names) or m)
    ) == {("person", "unmasked_restricted_pii")}
    assert calls == [["stg_people"]]


@pytest.fixture(scope="module")
def compiled_project(tmp_path_factory) -> dict:
    """The real project compiled against an empty warehouse (compile only renders SQL)."""
    tmp = tmp_path_factory.mktemp("governance")
    env = {**os.environ, "CITYBRAIN_WAREHOUSE": str(tmp / "warehouse.duckdb"), "CITYBRAIN_HOME": str(tmp)}
    target = tmp / "target"
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("dbt")), "compile", "--profiles-dir", ".", "--target-path", str(target),
         "--log-path", str(target), "--quiet"],
        cwd=REPO_ROOT / "dbt_project", env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads((target / "manifest.json").read_text(encoding="utf-8"))


def test_the_pool_is_clean(compiled_project):
    assert [str(v) for v in check_manifest(compiled_project, load_catalog())] == []


def test_removing_a_mask_from_the_pool_is_caught(compiled_project):
    m = copy.deepcopy(compiled_project)
    node = m["nodes"]["model.citybrain.fct_hotline_ticket"]
    assert "cb_scrub_text(description)" in node["compiled_code"]
    node["compiled_code"] = node["compiled_code"].replace("cb_scrub_text(description)", "description")
    violations = check_manifest(m, load_catalog())
    assert rules(violations) == {("description", "unmasked_restricted_pii")}
    assert "raw.hotline_tickets.description" in str(violations[0])


def test_the_dagster_dbt_step_fails_with_the_violations(compiled_project, tmp_path, monkeypatch):
    """Each dbt step (assets/dbt/build.py) runs the check on the manifest its `dbt build` wrote and fails
    the step (so neither the quality gate nor the publication runs)."""
    from dagster import Failure

    import assets.dbt.classification_check as dbt_check

    monkeypatch.setattr(
        dbt_check, "GOVERNANCE_STORE", str(tmp_path / "store.json")
    )  # absolute: joins to itself
    m = copy.deepcopy(compiled_project)
    dbt_check.check_classification(None, m)  # clean: passes
    node = m["nodes"]["model.citybrain.dim_enterprise"]
    node["compiled_code"] = node["compiled_code"].replace(
        "cb_mask_name(legal_representative)", "legal_representative"
    )
    with pytest.raises(
        Failure, match=r"dim_enterprise\.legal_representative: open model exposes .*person_name"
    ):
        dbt_check.check_classification(None, m)
