"""The publication asset: the last step of write-audit-publish.

It depends on every model dbt builds into the ``pool`` schema, so Dagster starts it only when they were
all built in this run and their blocking checks (GX suites, dbt tests) passed. A failed gate therefore
skips it and the previous published version stays live.
"""

import json

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset

from citybrain.ingest.warehouse import warehouse_lock
from citybrain.publication import publish, published_pool_path
from orchestration.dbt_project import citybrain_dbt_project
from orchestration.resources import PublicationResource, WarehouseResource

PUBLISHED_SCHEMA = "pool"


def pool_model_keys() -> list[AssetKey]:
    manifest = json.loads(citybrain_dbt_project.manifest_path.read_text(encoding="utf-8"))
    return sorted(
        AssetKey([node["name"]])
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node.get("schema") == PUBLISHED_SCHEMA
    )


@asset(
    key=AssetKey(["pool_publication"]),
    deps=pool_model_keys(),
    group_name="publication",
    owners=["team:data_engineering"],
    kinds={"duckdb"},
    description=(
        "数据池发布 — Publishes the audited pool schema as a new immutable version and switches "
        "citybrain_pool.duckdb to it atomically (readers see the whole old or the whole new version). Runs only "
        "after every blocking check upstream passed."
    ),
)
def pool_publication(
    context: AssetExecutionContext, warehouse: WarehouseResource, publication: PublicationResource
) -> MaterializeResult:
    from assets.quality import run_days
    from citybrain.quality.data_docs import data_docs_index

    path = warehouse.resolved_path()
    with warehouse_lock(path):
        published = publish(
            path,
            context.run.run_id,
            run_days(context.run.tags),
            directory=publication.resolved_directory(),
            keep=publication.resolved_keep(),
        )
    context.log.info(f"published pool version {published.version}: {published.path}")
    table_rows = "\n".join(f"| {name} | {rows:,} |" for name, rows in published.tables.items())
    return MaterializeResult(
        metadata={
            "version": published.version,
            "published_pool": MetadataValue.path(str(published_pool_path(publication.resolved_directory()))),
            "version_file": MetadataValue.path(published.path),
            "tables": MetadataValue.md("| table | rows |\n|---|---|\n" + table_rows),
            "dagster/row_count": sum(published.tables.values()),
            "deliveries": published.deliveries,
            "expectations_evaluated": published.checks_evaluated,
            "expectation_warnings": published.checks_failed_warning,
            "kept_versions": MetadataValue.json(published.kept_versions),
            "data_docs": MetadataValue.path(str(data_docs_index())),
        }
    )
