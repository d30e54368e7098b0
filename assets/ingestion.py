"""One Dagster asset per catalog feed, ``raw/<feed id>``, generated from the source catalog.

Each asset loads the feed's deliveries into ``raw.<feed id>`` (see ``citybrain.ingest``) and reports,
per materialisation, rows received / loaded / quarantined and the deliveries it processed. Daily feeds
are partitioned by day (Asia/Shanghai) and take a whole partition range in one run, so a backfill does
not start a process per day.
"""

import json
import warnings
from typing import TYPE_CHECKING

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    BackfillPolicy,
    BetaWarning,
    Failure,
    MaterializeResult,
    MetadataValue,
    RetryPolicy,
    TableColumn,
    TableSchema,
    asset,
)

from assets.partitions import daily_partitions
from citybrain import settings
from citybrain.catalog import Catalog, Feed, FileDelivery, HttpDelivery, SqlDelivery

if TYPE_CHECKING:  # the pipeline (SQLAlchemy, pyarrow readers) is imported when an asset runs, not at load
    from citybrain.ingest.pipeline import IngestionResult

RAW_PREFIX = "raw"
KIND_TAGS = {
    "csv": "csv",
    "jsonl": "json",
    "xlsx": "excel",
    "parquet": "parquet",
    "sql": "sql",
    "http": "api",
}


def step_tags(feed) -> dict[str, str] | None:
    """Dagster's executors start the ready step with the highest ``dagster/priority`` first (default 0):
    the day's feeds, then the database tables, then the full snapshots (``Feed.ingestion_order``)."""
    return {"dagster/priority": str(-feed.ingestion_order)} if feed.ingestion_order else None


def raw_asset_key(feed_id: str) -> AssetKey:
    return AssetKey([RAW_PREFIX, feed_id])


def _description(catalog: Catalog, feed: Feed) -> str:
    provider = catalog.providers[feed.provider]
    delivery = feed.delivery
    if isinstance(delivery, FileDelivery):
        how = f"{delivery.kind} file(s) `{delivery.path}` in the landing zone, encoding {delivery.encoding}"
    elif isinstance(delivery, SqlDelivery):
        how = f"table `{delivery.table}` of the `{delivery.connection}` database, incremental on `{delivery.cursor}`"
    else:
        how = (
            f"paginated API `{delivery.path}` of `{delivery.connection}`, incremental on `{delivery.cursor}`"
        )
    return (
        f"{feed.title.zh} — {feed.title.en}. Raw rows as delivered by {provider.name} ({provider.en}): {how}. "
        f"Cadence {feed.cadence}, {'daily partitions' if feed.is_partitioned else 'unpartitioned'}, "
        f"snapshot: {feed.snapshot}, key {feed.key}. Every value is text; unusable rows go to raw.quarantine."
        + (f" {feed.description}" if feed.description else "")
    )


def _definition_metadata(catalog: Catalog, feed: Feed) -> dict:
    columns = [
        TableColumn(
            c.name,
            "varchar",
            description=f"{c.description} [declared {c.type}; {c.classification}{'' if c.pii == 'none' else ', pii ' + c.pii}]",
            tags={"classification": c.classification, "pii": c.pii},
        )
        for c in feed.columns
    ]
    lineage = [
        TableColumn("_partition", "varchar", "Dagster partition (YYYY-MM-DD) or null"),
        TableColumn("_source_file", "varchar", "delivery the row came from"),
        TableColumn("_file_sha256", "varchar", "SHA-256 of the delivered bytes"),
        TableColumn("_row_number", "bigint", "1-based record number in the delivery"),
        TableColumn("_batch_id", "varchar", "Dagster run id that loaded the row"),
        TableColumn("_loaded_at", "timestamptz", "load time"),
    ]
    return {
        "dagster/column_schema": TableSchema(columns=columns + lineage),
        "dagster/table_name": f"raw.{feed.id}",
        "title_zh": feed.title.zh,
        "provider": f"{feed.provider} {catalog.providers[feed.provider].name}",
        "delivery": MetadataValue.json(feed.delivery.model_dump()),
        "cadence": feed.cadence,
        "key": ", ".join(feed.key),
    }


def _run_metadata(results: "list[IngestionResult]") -> dict:
    entries = [e for r in results for e in r.entries]
    by_reason: dict[str, int] = {}
    for r in results:
        for reason, n in r.quarantined_by_reason().items():
            by_reason[reason] = by_reason.get(reason, 0) + n
    table = [
        "| partition | delivery | status | received | loaded | quarantined |",
        "|---|---|---|---|---|---|",
    ]
    table += [
        f"| {e.partition_key or '—'} | `{e.source_file}` | {e.status} | {e.rows_received} | {e.rows_loaded} | {e.rows_quarantined} |"
        for e in entries
    ]
    unchanged = [f for r in results for f in r.unchanged]
    return {
        "dagster/row_count": sum(r.rows_current for r in results),
        "rows_received": sum(r.rows_received for r in results),
        "rows_loaded": sum(r.rows_loaded for r in results),
        "rows_quarantined": sum(r.rows_quarantined for r in results),
        "quarantined_by_reason": MetadataValue.json(by_reason),
        "deliveries": MetadataValue.md("\n".join(table)),
        "deliveries_unchanged": len(unchanged),
    }


def _late_update_metadata(late: "list[IngestionResult]") -> dict:
    """Late updates fetched for days before the run's (kept apart: they are not this partition's rows)."""
    if not late:
        return {}
    changed = {r.partition_key: r.rows_loaded for r in late if r.entries}
    return {
        "late_update_days_checked": len(late),
        "late_update_rows": sum(changed.values()),
        "late_updates_by_day": MetadataValue.json(changed),
    }


def build_ingestion_asset(catalog: Catalog, feed: Feed) -> AssetsDefinition:
    delivery = feed.delivery
    connection = getattr(delivery, "connection", None)
    resource_keys = {"warehouse"} | ({"landing"} if isinstance(delivery, FileDelivery) else {connection})
    partitioned = feed.is_partitioned

    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", BetaWarning
        )  # backfill_policy is beta in 1.13; its behaviour is tested
        return _define(catalog, feed, delivery, connection, resource_keys, partitioned)


def _define(catalog, feed, delivery, connection, resource_keys, partitioned) -> AssetsDefinition:
    @asset(
        key=raw_asset_key(feed.id),
        description=_description(catalog, feed),
        group_name=catalog.providers[feed.provider].group_name,
        owners=[f"team:{feed.provider}"],
        kinds={"duckdb", KIND_TAGS[delivery.kind]},
        tags={"provider": feed.provider, "cadence": feed.cadence, "layer": "raw"},
        metadata=_definition_metadata(catalog, feed),
        partitions_def=daily_partitions(catalog) if partitioned else None,
        backfill_policy=BackfillPolicy.single_run() if partitioned else None,
        required_resource_keys=resource_keys,
        retry_policy=None if isinstance(delivery, FileDelivery) else RetryPolicy(max_retries=2, delay=30),
        op_tags=step_tags(feed),
    )
    def _ingest(context: AssetExecutionContext) -> MaterializeResult:
        from citybrain.ingest.pipeline import ingest_files, ingest_http, ingest_sql

        warehouse = context.resources.warehouse.resolved_path()
        batch_id = context.run_id
        partition_keys = context.partition_keys if partitioned else [None]
        results = []
        for partition_key in partition_keys:
            if isinstance(delivery, FileDelivery):
                result = ingest_files(
                    feed, context.resources.landing.resolved_path(), warehouse, partition_key, batch_id
                )
            elif isinstance(delivery, SqlDelivery):
                result = ingest_sql(
                    feed, getattr(context.resources, connection).resolved_url(), warehouse, batch_id
                )
            elif isinstance(delivery, HttpDelivery):
                api = getattr(context.resources, connection)
                result = ingest_http(
                    feed,
                    api.resolved_url(),
                    warehouse,
                    partition_key,
                    batch_id,
                    api.session(),
                    api.timeout_seconds,
                )
            for entry in result.entries:
                context.log.info(
                    f"{entry.source_file}: {entry.status}, received {entry.rows_received} = loaded {entry.rows_loaded}"
                    f" + quarantined {entry.rows_quarantined} {json.dumps(entry.quarantined_by_reason)}"
                )
            results.append(result)
        late = []
        if isinstance(delivery, HttpDelivery) and delivery.late_update_days and partitioned:
            from citybrain.ingest.pipeline import ingest_http_late_updates

            api = getattr(context.resources, connection)
            late = ingest_http_late_updates(
                feed,
                api.resolved_url(),
                warehouse,
                list(partition_keys),
                batch_id,
                api.session(),
                api.timeout_seconds,
            )
            for entry in (e for r in late for e in r.entries):
                context.log.info(
                    f"late updates of {entry.partition_key}: {entry.rows_loaded} record(s) changed"
                )
        metadata = _run_metadata(results) | _late_update_metadata(late)
        if settings.raw_parquet_enabled():  # the raw layer as Parquet for Spark (docs/SCALE.md)
            metadata["parquet_lake"] = write_parquet_lake(warehouse, feed.id)
        # A day not delivered (yet) is not a broken run: the raw check "partition present" fails and holds
        # back the pool tables built from the feed (citybrain/staleness.py); the others are published.
        missing = [r.partition_key for r in results if r.missing and partitioned]
        if missing:
            context.log.warning(f"{feed.id}: nothing delivered for {', '.join(missing)}")
            metadata["missing_partitions"] = MetadataValue.json(missing)
        problems = [p for r in results + late for p in r.problems if not (r.missing and partitioned)]
        if problems:
            raise Failure(description=f"{feed.id}: " + "; ".join(problems), metadata=metadata)
        return MaterializeResult(metadata=metadata)

    return _ingest


def write_parquet_lake(warehouse, feed_id: str) -> str:
    """Bring the feed's Parquet partitions in line with what was just loaded; a short summary."""
    from citybrain.ingest.warehouse import open_warehouse
    from citybrain.lake.parquet_lake import sync_feed

    with open_warehouse(warehouse) as con:
        report = sync_feed(con, settings.lake_dir(), feed_id)
    return f"{len(report.written)} partition(s) written, {len(report.removed)} removed, {report.unchanged} unchanged"


def build_ingestion_assets(catalog: Catalog) -> list[AssetsDefinition]:
    return [build_ingestion_asset(catalog, feed) for feed in catalog.feeds]
