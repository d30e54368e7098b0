"""The resource catalog asset (政务数据资源目录): regenerated after every publication.

It reads what the publication just wrote (publications.jsonl) and the warehouse's ingestion log and
check results under the warehouse lock, so it never reads a half-written warehouse.
"""

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset

from assets.resources import PublicationResource, WarehouseResource
from citybrain.resource_catalog.export import export_dir, export_resource_catalog, load_lake_history


@asset(
    key=AssetKey(["resource_catalog"]),
    deps=[AssetKey(["pool_publication"])],
    group_name="publication",
    owners=["team:data_engineering"],
    kinds={"csv", "json", "html"},
    description=(
        "政务数据资源目录 — The resource catalog: one resource per pool table and per source feed with code, "
        "provider, data items, share/open type, update cycle, last update, row count and quality score. "
        "Written as CSV (UTF-8 with BOM), JSON and a browsable HTML page to $CITYBRAIN_HOME/catalog_export/current "
        "(the export before is kept in previous/)."
    ),
)
def resource_catalog(
    context: AssetExecutionContext, warehouse: WarehouseResource, publication: PublicationResource
) -> MaterializeResult:
    with warehouse.lock():
        history = load_lake_history(warehouse.resolved_path(), publication.resolved_directory())
    result = export_resource_catalog(export_dir(), history=history)
    resources = result.catalog.resources
    context.log.info(f"resource catalog: {len(resources)} resources written to {result.directory}")
    return MaterializeResult(
        metadata={
            "resources": len(resources),
            "pool_resources": sum(r.kind == "pool" for r in resources),
            "feed_resources": sum(r.kind == "feed" for r in resources),
            "html": MetadataValue.path(str(result.files["html"])),
            "csv": MetadataValue.path(str(result.files["csv"])),
            "json": MetadataValue.path(str(result.files["json"])),
            "history_sources": MetadataValue.json(result.catalog.sources),
        }
    )
