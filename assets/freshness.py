"""Freshness: each feed's catalog cadence becomes a WARN-severity asset check ``freshness`` on ``raw/<feed>``.

A feed is overdue when the newest *new data* it delivered is older than ``Feed.max_age_hours`` (the
cadence plus a quarter of grace): the rule is ``citybrain.quality.freshness.judge``, which ``citybrain
status`` applies too. This check reads when new data last arrived from the Dagster event log rather than
from the warehouse's ingestion log, because it runs at any time (the freshness sensor's check-only runs),
also while a run holds the warehouse: DuckDB allows one writer process and refuses readers meanwhile, and
a warning must not wait for the lock (the module docstring of ``citybrain/quality/freshness.py`` says
more). New data means a materialisation of the raw asset that received
rows (``rows_received`` > 0 in its metadata), not just any materialisation: the nightly job
re-ingests every feed every night, and a monthly feed whose department stopped delivering still
materialises (with every delivery "unchanged"). A materialisation without that metadata (one reported
by hand in the UI, say) counts as new data.

Why an asset check of our own and not Dagster's: ``build_last_update_freshness_checks`` (superseded
in 1.13) and ``FreshnessPolicy`` (evaluated by the daemon, shown as a freshness status rather than an
asset check, set on the asset definitions) both measure the last materialisation, which the nightly
refreshes whether or not anything arrived. The check writes the same metadata keys as Dagster's
freshness checks (``dagster/freshness_params``, ``dagster/last_updated_timestamp``,
``dagster/fresh_until_timestamp``), so Dagster's ``build_sensor_for_freshness_checks`` re-evaluates it
when it can have become overdue (see ``orchestration/sensors.py``).

One multi-asset check for all feeds: one step in a run, like the GX checks of the raw layer, reading
only the Dagster event log (never the warehouse, so it needs no lock and runs beside any writer).
"""

import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    AssetRecordsFilter,
    DagsterInstance,
    MetadataValue,
    multi_asset_check,
)

from assets.ingestion import raw_asset_key
from citybrain.catalog import GRACE_SHARE, Catalog, Feed
from citybrain.quality.freshness import judge

FRESHNESS_CHECK = "freshness"
CHECK_DEFINITION_NAME = "raw_freshness"
ROWS_RECEIVED = "rows_received"  # ingestion metadata (assets/ingestion.py)
PAGE = 100
MAX_RECORDS_SCANNED = 1_000  # looking for the newest delivery further back than this is not worth it


def _now() -> float:
    return time.time()


def _spec(feed: Feed, timezone: str) -> AssetCheckSpec:
    return AssetCheckSpec(
        FRESHNESS_CHECK,
        asset=raw_asset_key(feed.id),
        blocking=False,
        description=(
            f"Cadence {feed.cadence}: new data at least every {feed.max_age_hours:g} h "
            f"(cadence plus {GRACE_SHARE:.0%} grace). Overdue is a warning, never blocking."
        ),
        metadata={
            "cadence": feed.cadence,
            "max_age_hours": feed.max_age_hours,
            "dagster/freshness_params": MetadataValue.json(
                {"lower_bound_delta_seconds": feed.max_age_hours * 3600, "timezone": timezone}
            ),
        },
    )


def build_freshness_checks(catalog: Catalog) -> list[AssetChecksDefinition]:
    timezone = catalog.partitions.timezone
    max_age = {raw_asset_key(f.id): f.max_age_hours for f in catalog.feeds}
    cadence = {raw_asset_key(f.id): f.cadence for f in catalog.feeds}

    @multi_asset_check(
        name=CHECK_DEFINITION_NAME,
        specs=[_spec(feed, timezone) for feed in catalog.feeds],
        can_subset=True,
        description="Is each feed delivering on its catalog cadence? (warning only)",
    )
    def raw_freshness(context: AssetCheckExecutionContext):
        now = _now()
        for check_key in sorted(context.selected_asset_check_keys, key=lambda k: k.to_user_string()):
            key = check_key.asset_key
            yield evaluate_freshness(context.instance, key, max_age[key], cadence[key], timezone, now)

    return [raw_freshness]


def last_new_data(instance: DagsterInstance, key: AssetKey) -> tuple[float | None, int]:
    """Timestamp of the newest materialisation that received rows, and how many records were read."""
    cursor, scanned = None, 0
    while scanned < MAX_RECORDS_SCANNED:
        result = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=key), limit=PAGE, cursor=cursor, ascending=False
        )
        for record in result.records:
            scanned += 1
            metadata = record.asset_materialization.metadata if record.asset_materialization else {}
            received = metadata.get(ROWS_RECEIVED)
            if received is None or (received.value or 0) > 0:
                return record.timestamp, scanned
        if not result.has_more:
            break
        cursor = result.cursor
    return None, scanned


def evaluate_freshness(
    instance: DagsterInstance, key: AssetKey, max_age_hours: float, cadence: str, timezone: str, now: float
) -> AssetCheckResult:
    updated, scanned = last_new_data(instance, key)
    freshness = judge(updated, max_age_hours, now)
    tz = ZoneInfo(timezone)
    metadata: dict = {
        "cadence": cadence,
        "max_age_hours": max_age_hours,
        "dagster/freshness_params": MetadataValue.json(
            {"lower_bound_delta_seconds": max_age_hours * 3600, "timezone": timezone}
        ),
        "dagster/freshness_lower_bound_timestamp": MetadataValue.timestamp(freshness.lower_bound),
    }
    if updated is not None:
        metadata["dagster/last_updated_timestamp"] = MetadataValue.timestamp(updated)
        metadata["age_hours"] = round(freshness.age_hours, 1)
    if not freshness.overdue:
        # When the check can next turn overdue: Dagster's freshness sensor waits until then.
        metadata["dagster/fresh_until_timestamp"] = MetadataValue.timestamp(freshness.fresh_until)
        description = (
            f"Fresh: new data {_ago(now - updated)} ago, within the {cadence} cadence's {max_age_hours:g} h."
        )
    elif updated is None:
        seen = (
            f"none of its last {scanned} materialisations received new data"
            if scanned
            else "never materialised"
        )
        description = f"Overdue: {seen} (the {cadence} cadence allows {max_age_hours:g} h)."
    else:
        metadata["overdue_hours"] = round(freshness.overdue_hours, 1)
        last = datetime.fromtimestamp(updated, tz).strftime("%Y-%m-%d %H:%M %Z")
        description = (
            f"Overdue: the last new data arrived {_ago(now - updated)} ago ({last}); the {cadence} "
            f"cadence allows {max_age_hours:g} h."
        )
    return AssetCheckResult(
        asset_key=key,
        check_name=FRESHNESS_CHECK,
        passed=not freshness.overdue,
        severity=AssetCheckSeverity.WARN,
        description=description,
        metadata=metadata,
    )


def _ago(seconds: float) -> str:
    delta = timedelta(seconds=max(0, round(seconds)))
    if delta >= timedelta(days=2):
        return f"{delta.days} days"
    hours = delta.total_seconds() / 3600
    return f"{hours:.1f} h" if hours >= 1 else f"{delta.total_seconds() / 60:.0f} min"
