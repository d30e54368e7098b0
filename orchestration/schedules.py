"""Schedules, generated from the catalog.

* ``city_nightly_schedule``: 02:00 in the catalog's timezone (Asia/Shanghai), the ``city_nightly`` job
  (ingest → dbt → checks → publish) for the previous day's partition.
* one schedule per feed whose cadence is not daily, ``<feed>_<cadence>``: the ``raw_ingestion`` job
  limited to that feed's asset (and its checks), at 02:00 on the cadence's day (``CADENCE_CRONS``).
  Daily feeds need none: the nightly ingests them. The nightly ingests the other feeds too (it selects
  everything), so a cadence tick is skipped while the nightly schedule is active (it launched a run in
  the last 36 h): both at 02:00 would ingest the same new delivery at the same moment. The cadence
  schedules are what ingests those feeds when the nightly is off.

Every schedule starts STOPPED (turn it on in the UI, Automation → Schedules, or with
``dagster schedule start``; the state is kept in the instance). Not even the nightly runs by default:
``citybrain ui`` (``dagster dev``) on a demo lake would then start a full nightly at 02:00 for a day
the demo city has no deliveries for (a failed run and an alert), and after the UI was closed for a few
days the scheduler would catch up on missed nights at start-up. See docs/OPERATIONS.md.
"""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    RunsFilter,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from assets.ingestion import raw_asset_key
from citybrain.catalog import Catalog, Feed
from citybrain.vocabulary import TRIGGER_TAG
from orchestration.jobs import city_nightly, raw_ingestion

NIGHTLY_SCHEDULE = "city_nightly_schedule"
NIGHTLY_CRON = "0 2 * * *"
# When a feed of each cadence is ingested on its own (catalog cadence -> cron, in the catalog's
# timezone). Daily feeds are the nightly's.
CADENCE_CRONS = {
    "hourly": "5 * * * *",
    "weekly": "0 2 * * 1",  # Mondays
    "monthly": "0 2 1 * *",  # the 1st
    "termly": "0 2 1 3,9 *",  # 1 March and 1 September
    "yearly": "0 2 1 1 *",  # 1 January
}
SCHEDULE_NAME_TAG = "dagster/schedule_name"  # set by Dagster on every run a schedule launches
NIGHTLY_ACTIVE_HOURS = 36


def previous_day(context: ScheduleEvaluationContext, timezone: str) -> str:
    """The day before the tick, in ``timezone``: the last complete daily partition."""
    tick = context.scheduled_execution_time or datetime.now(ZoneInfo(timezone))
    return (tick.astimezone(ZoneInfo(timezone)).date() - timedelta(days=1)).isoformat()


def nightly_active(context: ScheduleEvaluationContext) -> bool:
    """Did the nightly schedule launch a run in the last 36 h (so it will ingest every feed tonight)?"""
    tick = context.scheduled_execution_time or datetime.now(ZoneInfo("UTC"))
    runs = context.instance.get_run_records(
        RunsFilter(
            job_name=city_nightly.name,
            tags={SCHEDULE_NAME_TAG: NIGHTLY_SCHEDULE},
            created_after=tick - timedelta(hours=NIGHTLY_ACTIVE_HOURS),
        ),
        limit=1,
    )
    return bool(runs)


def nightly_schedule(catalog: Catalog) -> ScheduleDefinition:
    timezone = catalog.partitions.timezone

    @schedule(
        name=NIGHTLY_SCHEDULE,
        job=city_nightly,
        cron_schedule=NIGHTLY_CRON,
        execution_timezone=timezone,
        default_status=DefaultScheduleStatus.STOPPED,
        description=(
            f"Every night at 02:00 ({timezone}): city_nightly for the previous day's partition "
            "(ingest every feed, dbt, quality gate, publish)."
        ),
    )
    def _nightly(context: ScheduleEvaluationContext) -> RunRequest:
        day = previous_day(context, timezone)
        return RunRequest(partition_key=day, tags={TRIGGER_TAG: NIGHTLY_SCHEDULE})

    return _nightly


def cadence_schedule(catalog: Catalog, feed: Feed) -> ScheduleDefinition:
    timezone = catalog.partitions.timezone
    try:
        cron = CADENCE_CRONS[feed.cadence]
    except KeyError:
        raise ValueError(f"feed {feed.id!r}: no schedule for cadence {feed.cadence!r}") from None
    name = f"{feed.id}_{feed.cadence}"
    key = raw_asset_key(feed.id)

    @schedule(
        name=name,
        job=raw_ingestion,
        cron_schedule=cron,
        execution_timezone=timezone,
        default_status=DefaultScheduleStatus.STOPPED,
        description=(
            f"Ingest {feed.id} ({feed.title.en}) on its {feed.cadence} cadence: `{cron}` ({timezone})"
            + (", the previous day's partition" if feed.is_partitioned else "")
            + f". Skipped while {NIGHTLY_SCHEDULE} is active (it ingests every feed)."
        ),
        tags={"cadence": feed.cadence, "feed": feed.id},
    )
    def _cadence(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
        if nightly_active(context):
            return SkipReason(
                f"{NIGHTLY_SCHEDULE} is active and ingests every feed, {feed.id} included, tonight"
            )
        return RunRequest(
            asset_selection=[key],
            partition_key=previous_day(context, timezone) if feed.is_partitioned else None,
            tags={TRIGGER_TAG: name},
        )

    return _cadence


def build_schedules(catalog: Catalog) -> list[ScheduleDefinition]:
    return [nightly_schedule(catalog)] + [
        cadence_schedule(catalog, feed) for feed in catalog.feeds if feed.cadence != "daily"
    ]
