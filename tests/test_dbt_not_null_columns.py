"""`citybrain_not_null` (dbt_project/tests/generic/citybrain_not_null.sql): one dbt test per model for every
column that must not be null. Run by dbt itself on a warehouse holding a model's table with nulls placed by
hand: it fails, and its rows name each column that holds nulls with how many (counted here from the rows
written, not by the test's SQL)."""

import json
from pathlib import Path

import duckdb

from tests.dbt_project_cli import run_dbt

MODEL = "int_spatial__grid_cells"  # intermediate schema; its not-null columns below
COLUMNS = ["grid_id", "center_lng", "center_lat", "district_code", "district_method"]
ROWS = [
    ("881", 120.1, 30.2, "330102", "county_polygon"),
    ("882", 120.2, None, "330105", "county_polygon"),
    ("883", 120.3, None, None, "county_polygon_edge"),
    ("884", 120.4, 30.5, "330106", "county_polygon"),
]


def _warehouse(tmp_path: Path, rows) -> Path:
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("CREATE SCHEMA intermediate")
        con.execute(
            f"CREATE TABLE intermediate.{MODEL} (grid_id VARCHAR, center_lng DOUBLE, center_lat DOUBLE, "
            "district_code VARCHAR, district_method VARCHAR)"
        )
        con.executemany(f"INSERT INTO intermediate.{MODEL} VALUES (?, ?, ?, ?, ?)", rows)
    return warehouse


def _run_test(tmp_path: Path, rows) -> tuple[dict, list]:
    warehouse = _warehouse(tmp_path, rows)
    target = tmp_path / "target"
    selector = f"{MODEL}_columns_not_null"  # the test's name in the model's YAML
    run = run_dbt(["test", "--select", selector], target, warehouse)
    results = json.loads((target / "run_results.json").read_text(encoding="utf-8"))["results"]
    assert len(results) == 1, run.stdout[-3000:]
    compiled = next((target / "compiled").rglob(f"{MODEL}_columns_not_null.sql")).read_text(encoding="utf-8")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        failing = con.execute(compiled).fetchall()
    return results[0], failing


def test_a_model_with_nulls_fails_and_names_each_column_with_its_count(tmp_path):
    result, failing = _run_test(tmp_path, ROWS)
    expected = {
        column: sum(1 for row in ROWS if row[i] is None)
        for i, column in enumerate(COLUMNS)
        if any(row[i] is None for row in ROWS)
    }
    assert expected == {"center_lat": 2, "district_code": 1}
    assert dict(failing) == expected
    assert result["status"] == "fail"
    assert result["failures"] == len(expected)


def test_a_model_without_nulls_passes(tmp_path):
    complete = [row for row in ROWS if None not in row]
    result, failing = _run_test(tmp_path, complete)
    assert failing == []
    assert result["status"] == "pass"
