"""The reference tables are built again only when what they are built from changed (issue 20): a second night
with the same inputs keeps them; another city, a changed record of division changes or a missing table
rebuilds them. Run through Dagster, on a warehouse of its own."""

from __future__ import annotations

import shutil

import duckdb
import pytest
from dagster import materialize

from assets.reference import reference_divisions
from assets.resources import WarehouseResource
from citybrain.reference import divisions
from citybrain.reference.city import write_city

TABLES = ["city_counties", "division_crosswalk", "division_townships", "county_boundaries", "county_cells",
          "feeds", "vocabularies", "operators"]  # fmt: skip


def _night(warehouse) -> dict[str, dict]:
    """Materialize the reference step; each table's metadata by name."""
    result = materialize(
        [reference_divisions], resources={"warehouse": WarehouseResource(path=str(warehouse))}
    )
    assert result.success
    return {
        m.asset_key.path[-1]: {k: v.value for k, v in m.metadata.items()}
        for m in result.asset_materializations_for_node("reference_divisions")
    }


def _counties(warehouse) -> list[str]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return [
            c for (c,) in con.execute("SELECT code FROM reference.city_counties ORDER BY code").fetchall()
        ]


@pytest.fixture
def lake(tmp_path, monkeypatch):
    city = tmp_path / "city.yaml"
    write_city(city, ["330102", "330105"], "测试市", "Test")
    monkeypatch.setenv("CITYBRAIN_CITY", str(city))
    monkeypatch.setenv("CITYBRAIN_HOME", str(tmp_path))
    return tmp_path


def test_a_night_with_the_same_inputs_keeps_the_tables(lake):
    warehouse = lake / "warehouse.duckdb"
    first = _night(warehouse)
    assert set(first) == set(TABLES) and all(m["rebuilt"] for m in first.values())
    with duckdb.connect(str(warehouse)) as con:  # a mark the rebuild would wipe out
        con.execute("INSERT INTO reference.operators BY NAME SELECT * FROM reference.operators LIMIT 1")
    second = _night(warehouse)
    assert not any(m["rebuilt"] for m in second.values())
    assert second["operators"]["dagster/row_count"] == first["operators"]["dagster/row_count"] + 1
    assert {t: m["dagster/row_count"] for t, m in second.items() if t != "operators"} == {
        t: m["dagster/row_count"] for t, m in first.items() if t != "operators"
    }
    assert _counties(warehouse) == ["330102", "330105"]


def test_another_city_rebuilds_them(lake):
    warehouse = lake / "warehouse.duckdb"
    _night(warehouse)
    write_city(lake / "city.yaml", ["330102", "330106", "330108"], "测试市", "Test")
    night = _night(warehouse)
    assert all(m["rebuilt"] for m in night.values())
    assert _counties(warehouse) == ["330102", "330106", "330108"]


def test_a_missing_table_rebuilds_them(lake):
    warehouse = lake / "warehouse.duckdb"
    _night(warehouse)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("DROP TABLE reference.county_cells")
    assert all(m["rebuilt"] for m in _night(warehouse).values())
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM reference.county_cells").fetchone()[0] > 0


def test_a_changed_record_of_division_changes_rebuilds_them(lake, monkeypatch):
    warehouse = lake / "warehouse.duckdb"
    _night(warehouse)
    record = lake / "division_changes.csv"
    shutil.copyfile(divisions.CHANGES_FILE, record)
    monkeypatch.setattr(divisions, "CHANGES_FILE", record)
    assert not any(m["rebuilt"] for m in _night(warehouse).values())  # the same bytes elsewhere: kept
    with record.open("a", encoding="utf-8") as f:
        f.write("\n")
    assert all(m["rebuilt"] for m in _night(warehouse).values())


def test_the_first_night_on_a_new_lake_has_no_warehouse_file_yet(lake):
    warehouse = lake / "new" / "warehouse.duckdb"
    warehouse.parent.mkdir()
    assert all(m["rebuilt"] for m in _night(warehouse).values())
    assert _counties(warehouse) == ["330102", "330105"]
