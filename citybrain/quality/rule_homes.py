"""Which kind of rule lives where, and the check that no expectation repeats a dbt test.

dbt tests and contracts guard structure: keys (``unique``, ``citybrain_unique_combination``), not-null
columns (``citybrain_not_null``, one test per model), relationships, accepted values, and the declared
column names and types (an enforced contract).
They run inside ``dbt build``, before any Great Expectations suite of the pool, and an error-severity
failure stops the step. Great Expectations guards what dbt cannot express: distributions and shares,
volume against earlier partitions, cross-field and cross-partition comparisons, row-level validity against
domain libraries (check digits, current division codes, county boundaries), small cells and personal
identifiers in the open tier.

An expectation on a pool model that says the same as one of the model's dbt tests is therefore a second
home for one rule: it can only pass where dbt already passed, costs a scan of the table every night, and
the two drift apart when one is edited. ``repeated_dbt_tests`` lists them;
``tests/test_expectation_suites.py`` fails on any.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from citybrain.quality.suites import SuiteSpec

# GX expectation (or citybrain rule) -> the dbt generic test that states the same rule.
SAME_RULE = {
    "expect_column_values_to_not_be_null": "not_null",
    "expect_column_values_to_be_unique": "unique",
    "expect_column_values_to_be_in_set": "accepted_values",
    "expect_compound_columns_to_be_unique": "citybrain_unique_combination",
}
# Our not_null of several columns at once (dbt_project/tests/generic/citybrain_not_null.sql).
NOT_NULL_COLUMNS = "citybrain_not_null"


def dbt_rules(manifest: Mapping[str, Any]) -> dict[str, list[tuple[str, str | None, Any]]]:
    """Model name -> its generic dbt tests as (test name, column, arguments); an enforced contract adds
    ``("contract", None, None)`` and a not-null constraint ``("not_null", column, None)``."""
    rules: dict[str, list[tuple[str, str | None, Any]]] = {}
    for node in manifest["nodes"].values():
        if node["resource_type"] == "model":
            model = rules.setdefault(node["name"], [])
            if node["config"].get("contract", {}).get("enforced"):
                model.append(("contract", None, None))
                model += [
                    ("not_null", name, None)
                    for name, column in node["columns"].items()
                    if any(c.get("type") == "not_null" for c in column.get("constraints", []))
                ]
        elif node["resource_type"] == "test" and node.get("test_metadata"):
            attached = (node.get("attached_node") or "").split(".")[-1]
            if not attached:
                continue
            metadata = node["test_metadata"]
            kwargs = metadata.get("kwargs", {})
            if metadata["name"] == NOT_NULL_COLUMNS:  # one test for many columns: a not_null on each
                rules.setdefault(attached, []).extend(
                    ("not_null", c, kwargs) for c in kwargs.get("columns", [])
                )
                continue
            rules.setdefault(attached, []).append((metadata["name"], kwargs.get("column_name"), kwargs))
    return rules


def _same_values(gx_values: Iterable, dbt_values: Iterable) -> bool:
    return {str(v) for v in gx_values} == {str(v) for v in dbt_values}


def repeats(kind: str, arguments: Mapping[str, Any], tests: list[tuple[str, str | None, Any]]) -> str | None:
    """The dbt test (or contract) that already states this expectation, or None."""
    if kind == "citybrain_schema":
        return "the enforced dbt contract" if ("contract", None, None) in tests else None
    dbt_name = SAME_RULE.get(kind)
    if dbt_name is None:
        return None
    column = arguments.get("column")
    for name, test_column, kwargs in tests:
        if name != dbt_name:
            continue
        if dbt_name == "citybrain_unique_combination":
            if set(kwargs.get("columns", [])) == set(arguments.get("column_list", [])):
                return f"dbt test {name}"
        elif test_column == column and (
            dbt_name != "accepted_values" or _same_values(arguments.get("value_set", []), kwargs["values"])
        ):
            return f"dbt test {name} on {column}" if kwargs else f"dbt not_null constraint on {column}"
    return None


def repeated_dbt_tests(suites: Iterable[SuiteSpec], manifest: Mapping[str, Any]) -> list[str]:
    """Every pool expectation that repeats a dbt test or contract of its model, as readable lines."""
    rules = dbt_rules(manifest)
    found = []
    for suite in suites:
        schema, table = suite.dataset.split(".")
        if schema != "pool":
            continue
        for entry in suite.expectations:
            home = repeats(entry.kind, entry.arguments, rules.get(table, []))
            if home:
                column = entry.arguments.get("column")
                found.append(
                    f"{suite.path.name}: {entry.kind}{f' ({column})' if column else ''} repeats {home}"
                )
    return found
