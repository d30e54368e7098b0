"""The publication asset: the last step of write-audit-publish.

It depends on every model dbt builds into the ``pool`` schema, so Dagster starts it only when they were
all built in this run and their blocking checks (GX suites, dbt tests) passed. A failed gate therefore
skips it and the previous published version stays live. Which tier each table goes to is its model's
``config.meta.classification``, read from the dbt manifest when the asset runs (not at import), so a
classification tightened in dbt takes effect at the next publication.
"""

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset

from citybrain.ingest.warehouse import warehouse_lock
from citybrain.publication import classification_from_manifest, publish, tier_paths
from orchestration.dbt_project import citybrain_dbt_project, parsed_manifest
from orchestration.resources import PublicationResource, WarehouseResource

PUBLISHED_SCHEMA = "pool"


def pool_model_keys() -> list[AssetKey]:
    return sorted(
        AssetKey([node["name"]])
        for node in parsed_manifest()["nodes"].values()
        if node["resource_type"] == "model" and node.get("schema") == PUBLISHED_SCHEMA
    )


@asset(
    key=AssetKey(["pool_publication"]),
    deps=pool_model_keys(),
    group_name="publication",
    owners=["team:data_engineering"],
    kinds={"duckdb"},
    description=(
        "数据池发布 — Publishes the audited pool per tier (open, conditional; restricted stays in the "
        "warehouse) as a new immutable version and switches each tier's live file to it atomically (readers "
        "see the whole old or the whole new version). Runs only after every blocking check upstream passed; "
        "audited."
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
            classification_from_manifest(citybrain_dbt_project.manifest_path),
            directory=publication.resolved_directory(),
            keep=publication.resolved_keep(),
        )
    context.log.info(f"published pool version {published.version}: {published.paths}")
    table_rows = "\n".join(
        f"| {tier} | {name} | {rows:,} |"
        for tier, tables in published.tables.items()
        for name, rows in tables.items()
    )
    tiers = tier_paths(publication.resolved_directory())
    return MaterializeResult(
        metadata={
            "version": published.version,
            **{f"published_{tier}": MetadataValue.path(str(path)) for tier, path in tiers.items()},
            "version_files": MetadataValue.json(published.paths),
            "tables": MetadataValue.md("| tier | table | rows |\n|---|---|---|\n" + table_rows),
            "withheld_restricted": MetadataValue.json(published.withheld),
            "dagster/row_count": published.row_count,
            "deliveries": published.deliveries,
            "expectations_evaluated": published.checks_evaluated,
            "expectation_warnings": published.checks_failed_warning,
            "kept_versions": MetadataValue.json(published.kept_versions),
            "data_docs": MetadataValue.path(str(data_docs_index())),
        }
    )
