"""The publication asset: the last step of write-audit-publish.

It depends on every model dbt builds into the ``pool`` schema, so Dagster starts it once they were all
built in this run and their checks ran. A failed blocking expectation does not skip it: the tables built
from the dataset it failed on are held back (previous content kept, marked stale in ``meta.stale_tables``,
``citybrain/staleness.py``) and the others are published; the stale tables are in this asset's metadata,
in ``citybrain status`` and in the run's alert (``orchestration/sensors.py``). A failed error-severity dbt
test holds back in the same way (``assets/dbt/failed_tests.py``); a model dbt could not build at all still
fails its step, and then nothing is published. Which tier each table goes to is its model's
``config.meta.classification``, read from the dbt manifest when the asset runs (not at import), so a
classification tightened in dbt takes effect at the next publication.
"""

import json
import os
from datetime import UTC, datetime

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset

from assets.dbt.classification_check import governance_store_path
from assets.dbt_project import citybrain_dbt_project, parsed_manifest
from assets.resources import PublicationResource, WarehouseResource
from citybrain.catalog import load_catalog
from citybrain.lineage.columns import column_origins
from citybrain.publication import classification_from_manifest, publish, tier_paths
from citybrain.vocabulary import is_pool_model
from citybrain.warehouse import warehouse_lock

STALE_METADATA = "stale_tables"  # read by the run's alert (orchestration/sensors.py)


def pool_model_keys() -> list[AssetKey]:
    return sorted(
        AssetKey([node["name"]]) for node in parsed_manifest()["nodes"].values() if is_pool_model(node)
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
        "see the whole old or the whole new version). A table whose inputs failed a blocking check "
        "keeps its previous content and is marked stale (meta.stale_tables); the others are published fresh; "
        "audited."
    ),
)
def pool_publication(
    context: AssetExecutionContext, warehouse: WarehouseResource, publication: PublicationResource
) -> MaterializeResult:
    from assets.quality import run_days
    from citybrain.quality.data_docs import data_docs_index

    path = warehouse.resolved_path()
    manifest_path = citybrain_dbt_project.manifest_path
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))  # grades, quasi-identifiers, lineage
    try:
        with warehouse_lock(path):
            published = publish(
                path,
                context.run.run_id,
                run_days(context.run.tags),
                classification_from_manifest(manifest_path),
                directory=publication.resolved_directory(),
                keep=publication.resolved_keep(),
                manifest=manifest,
            )
    except Exception:
        emit_lineage(context, None, manifest)
        raise
    context.log.info(f"published pool version {published.version}: {published.paths}")
    for table, hold in published.stale.items():
        context.log.warning(
            f"{table} held back ({'whole' if hold['whole'] else 'some days'}): {hold['reason']}"
        )
    emit_lineage(context, published, manifest)
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
            "reidentification_risk": MetadataValue.json(published.reidentification),
            "dagster/row_count": published.row_count,
            "deliveries": published.deliveries,
            "expectations_evaluated": published.checks_evaluated,
            "expectation_warnings": published.checks_failed_warning,
            "kept_versions": MetadataValue.json(published.kept_versions),
            STALE_METADATA: MetadataValue.json(published.stale),
            "data_docs": MetadataValue.path(str(data_docs_index())),
        }
    )


def emit_lineage(context: AssetExecutionContext, published, manifest: dict) -> None:
    """OpenLineage events of this publication (or its failure) when CITYBRAIN_OPENLINEAGE_URL is set; a catalog
    that cannot be reached is logged, never fails the publication."""
    from citybrain.lineage import openlineage

    if not openlineage.configured():
        return
    record = context.instance.get_run_record_by_id(context.run.run_id)
    started = (
        datetime.fromtimestamp(record.start_time, UTC).isoformat() if record and record.start_time else None
    )
    job = context.run.job_name if context.run else "city_nightly"
    try:
        if published is None:
            events = openlineage.failure_events(context.run.run_id, job, started)
        else:
            events = openlineage.publication_events(
                context.run.run_id,
                job,
                published.version,
                {name: rows for tables in published.tables.values() for name, rows in tables.items()},
                published_lineage(published),
                manifest,
                column_origins(manifest, load_catalog(), governance_store_path()),
                started,
            )
        openlineage.emit(events)
        context.log.info(f"OpenLineage: {len(events)} events sent to {os.environ[openlineage.URL_ENV]}")
    except Exception as error:  # noqa: BLE001 - lineage is reported, never a reason to fail the publication
        context.log.warning(f"OpenLineage events not sent: {type(error).__name__}: {error}")


def published_lineage(published) -> list[dict]:
    """meta.table_lineage of every tier of the version just published."""
    import duckdb

    rows: list[dict] = []
    for version_file in published.paths.values():
        with duckdb.connect(version_file, read_only=True) as con:
            result = con.execute("SELECT * FROM meta.table_lineage")
            names = [d[0] for d in result.description]
            rows += [dict(zip(names, row, strict=True)) for row in result.fetchall()]
    return rows
