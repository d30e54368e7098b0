"""The expectation suites in expectations/: one per raw feed and pool model, each loadable and buildable
into GX expectations, and the rules every suite follows (open tier: no personal identifiers, blocking;
daily partitions: validated per partition, partition present, blocking). No lake needed."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import fields

import pytest

from assets.dbt_project import citybrain_dbt_project
from citybrain.quality.rule_homes import repeated_dbt_tests
from citybrain.quality.suites import (
    EXPECTATIONS_DIR,
    RULES,
    RunValues,
    SuiteError,
    gx_expectations,
    load_suites,
)
from citybrain.quality.validate import expected_columns

SUITES = load_suites()
BY_DATASET = {s.dataset: s for s in SUITES}
COUNTIES = ["330102", "330105", "330106"]
EXTENTS = {  # rough boxes of three Hangzhou districts (min_lng, min_lat, max_lng, max_lat)
    COUNTIES[0]: (120.13, 30.19, 120.29, 30.40),
    COUNTIES[1]: (120.09, 30.26, 120.21, 30.40),
    COUNTIES[2]: (119.99, 30.08, 120.18, 30.36),
}


def _pool_models() -> dict[str, dict]:
    """Models of the pool schema (folder models/pool) from the dbt manifest."""
    manifest = json.loads(citybrain_dbt_project.manifest_path.read_text(encoding="utf-8"))
    return {
        n["name"]: n
        for n in manifest["nodes"].values()
        if n["resource_type"] == "model" and n["config"].get("schema") == "pool"
    }


POOL_MODELS = _pool_models()


def _daily_models() -> dict[str, str]:
    """Daily-partitioned pool models and their partition column (the incremental unique_key)."""
    return {
        name: node["config"]["unique_key"]
        for name, node in POOL_MODELS.items()
        if node["config"].get("materialized") == "incremental" and "daily" in node["tags"]
    }


def _run_values(suite, trailing: list[int]) -> RunValues:
    values = {
        "dataset": suite.dataset,
        "expected_columns": expected_columns(suite),
        "county_codes": COUNTIES,
        "county_extents": EXTENTS,
        "county_extent_missing": {},
        "trailing_counts": trailing,
        "quiet_day": False,
    }
    return RunValues(**{f.name: values[f.name] for f in fields(RunValues)})


def _entries(suite, kind: str) -> list:
    return [e for e in suite.expectations if e.kind == kind]


def test_every_feed_and_pool_model_has_exactly_one_suite(catalog):
    counts = Counter(s.dataset for s in SUITES)
    assert [d for d, n in counts.items() if n > 1] == []
    wanted = {f"raw.{f.id}" for f in catalog.feeds} | {f"pool.{name}" for name in POOL_MODELS}
    assert sorted(wanted - set(counts)) == [], "datasets without a suite"
    assert sorted(set(counts) - wanted) == [], "suites for datasets that do not exist"
    for name in ("dim_district", "fct_presence_hourly", "ind_district_monthly"):
        assert f"pool.{name}" in wanted  # the manifest really lists the pool and indicator models


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.dataset)
def test_every_entry_builds_gx_expectations(suite):
    # A partitioned suite is built as for a partition with enough history for a volume band.
    partition, trailing = ("2026-01-10", [1000, 1100, 900, 1000]) if suite.partition else (None, [])
    values = _run_values(suite, trailing)
    built = gx_expectations(suite, values, partition)
    assert built
    assert {e.meta["severity"] for e in built} <= {"blocking", "warning"}
    rules = {e.meta["rule"] for e in built}
    # Every entry becomes at least one expectation (no_personal_identifiers: only with text columns).
    assert {e.kind for e in suite.expectations} - rules <= {"citybrain_no_personal_identifiers"}
    assert all(e.severity in ("critical", "warning") for e in built)
    if suite.dataset.startswith("raw."):  # pool models: the enforced dbt contract (rule_homes.py)
        assert _entries(suite, "citybrain_schema"), "every raw suite checks the declared schema"
    assert all(e.severity == "blocking" for e in _entries(suite, "citybrain_schema"))


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.dataset)
def test_entries_name_declared_columns(suite):
    columns = set(expected_columns(suite))
    if suite.partition:
        assert suite.partition.column in columns
    for entry in suite.expectations:
        args = entry.arguments
        named = [args.get(k) for k in ("column", "column_A", "column_B", "lng", "lat") if args.get(k)]
        named += args.get("column_list") or []
        assert set(named) <= columns, f"{suite.path.name}: {entry.kind} names {set(named) - columns}"


def test_open_pool_models_are_checked_for_personal_identifiers():
    open_models = [
        n for n, node in POOL_MODELS.items() if node["config"]["meta"].get("classification") == "open"
    ]
    assert open_models
    for name in open_models:
        entries = _entries(BY_DATASET[f"pool.{name}"], "citybrain_no_personal_identifiers")
        assert entries and all(e.severity == "blocking" for e in entries), name


def test_daily_datasets_are_validated_per_partition_and_must_be_present(catalog):
    daily = {f"raw.{f.id}": "_partition" for f in catalog.feeds if f.partitioning == "daily"}
    daily |= {f"pool.{name}": column for name, column in _daily_models().items()}
    assert "pool.fct_presence_hourly" in daily and "raw.operator_a_presence" in daily
    for dataset, column in daily.items():
        suite = BY_DATASET[dataset]
        assert suite.partition is not None and suite.partition.column == column, dataset
        present = _entries(suite, "citybrain_partition_present")
        assert present and all(e.severity == "blocking" for e in present), dataset
    for suite in SUITES:
        if suite.dataset not in daily:
            assert suite.partition is None, f"{suite.dataset} is not daily-partitioned"


def _manifest() -> dict:
    return json.loads(citybrain_dbt_project.manifest_path.read_text(encoding="utf-8"))


def test_no_expectation_repeats_a_dbt_test_or_contract():
    assert repeated_dbt_tests(SUITES, _manifest()) == []
    # Every pool model's structure has its home in dbt: an enforced contract and at least one key test.
    for name, node in POOL_MODELS.items():
        assert node["config"]["contract"]["enforced"], f"{name}: no enforced contract"


def test_a_repeated_rule_is_found(tmp_path):
    """The check itself: a pool suite restating a not-null, a key and an accepted-values test of its model
    (the values in another order), and the schema its contract enforces, is reported four times; a
    narrower value set (a different rule) is not."""
    (tmp_path / "pool").mkdir()
    (tmp_path / "pool" / "dim_resident.yml").write_text(
        "dataset: pool.dim_resident\nexpectations:\n"
        "  - citybrain_schema:\n    severity: blocking\n"
        "  - expect_column_values_to_not_be_null: {column: resident_key}\n    severity: blocking\n"
        "  - expect_column_values_to_be_unique: {column: resident_key}\n    severity: blocking\n"
        "  - expect_column_values_to_be_in_set: {column: sex, value_set: [F, M]}\n    severity: warning\n"
        "  - expect_column_values_to_be_in_set: {column: sex, value_set: [F]}\n    severity: warning\n",
        encoding="utf-8",
    )
    found = repeated_dbt_tests(load_suites(tmp_path), _manifest())
    assert [line.split(" repeats ")[0] for line in found] == [
        "dim_resident.yml: citybrain_schema",
        "dim_resident.yml: expect_column_values_to_not_be_null (resident_key)",
        "dim_resident.yml: expect_column_values_to_be_unique (resident_key)",
        "dim_resident.yml: expect_column_values_to_be_in_set (sex)",
    ]
    assert "contract" in found[0] and "accepted_values on sex" in found[3]


def test_rules_are_documented_in_the_readme():
    readme = (EXPECTATIONS_DIR / "README.md").read_text(encoding="utf-8")
    assert [rule for rule in RULES if rule not in readme] == []


def _write(tmp_path, text: str):
    folder = tmp_path / "raw"
    folder.mkdir()
    path = folder / "schools.yml"
    path.write_text(text, encoding="utf-8")
    return path


def test_unknown_expectation_is_reported_with_the_file(tmp_path):
    path = _write(
        tmp_path,
        "dataset: raw.schools\nexpectations:\n  - citybrain_schema:\n    severity: blocking\n"
        "  - citybrain_no_such_rule: {column: name}\n    severity: warning\n",
    )
    with pytest.raises(SuiteError, match="citybrain_no_such_rule") as info:
        load_suites(tmp_path)
    assert str(path) in str(info.value)


def test_misspelt_gx_expectation_is_reported_with_the_file(tmp_path):
    path = _write(
        tmp_path,
        "dataset: raw.schools\nexpectations:\n  - expect_column_values_to_be_nul: {column: name}\n"
        "    severity: blocking\n",
    )
    (suite,) = load_suites(tmp_path)
    with pytest.raises(SuiteError, match="expect_column_values_to_be_nul") as info:
        gx_expectations(suite, _run_values(suite, []), None)
    assert str(path) in str(info.value)


def test_missing_severity_is_reported_with_the_file(tmp_path):
    path = _write(
        tmp_path,
        "dataset: raw.schools\nexpectations:\n  - expect_column_values_to_not_be_null: {column: name}\n",
    )
    with pytest.raises(SuiteError, match="severity") as info:
        load_suites(tmp_path)
    assert str(path) in str(info.value)


def test_a_single_brace_in_a_sql_expectation_is_reported_with_the_file(tmp_path):
    """GX formats the query with {batch}: a regex quantifier like {1,2} must be written {{1,2}}."""
    (tmp_path / "pool").mkdir()
    (tmp_path / "pool" / "t.yml").write_text(
        "dataset: pool.t\nexpectations:\n  - unexpected_rows_expectation:\n"
        "      unexpected_rows_query: \"SELECT * FROM {batch} WHERE regexp_matches(x, '^a{1,2}$')\"\n"
        "    severity: blocking\n",
        encoding="utf-8",
    )
    with pytest.raises(SuiteError, match=r"(?s)t\.yml.*brace"):
        load_suites(tmp_path)
