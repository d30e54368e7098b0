"""Sensors: a delivery arrives in the landing zone, a run fails, a feed may have become overdue.

* ``landing_zone_sensor`` lists each file feed's deliveries in the landing zone (the catalog path with
  the date widened to any day: ``citybrain.ingest.landing.claimed_files``), identifies each file by its
  SHA-256 and requests one ``raw_ingestion`` run of that feed for the file's partition, with
  ``run_key = "<feed>:<partition>:<sha256>"`` (partition empty for unpartitioned feeds; files of one
  feed and partition found in the same tick share one run, keyed by the first). New bytes under
  an old name are a new run key, so a corrected redelivery runs once more; the same bytes under a new
  name are the same run key, which Dagster does not launch twice. Default STOPPED (see
  ``build_landing_sensor``).
* ``run_failure_alert`` (``@run_failure_sensor``) logs every failed run and POSTs it to
  ``$CITYBRAIN_ALERT_WEBHOOK_URL`` when set (``orchestration/alerts.py``). Default RUNNING.
* ``stale_tables_alert`` (``@run_status_sensor`` on success) does the same for a run that succeeded but
  held pool tables back at publication (stale: ``citybrain/staleness.py``). Default RUNNING.
* ``overdue_applications_alert`` (every ``OVERDUE_INTERVAL_SECONDS``) alerts the same way for sharing
  applications past their statutory clock (docs/SHARING.md), once per application and clock step: the
  cursor keeps the steps already alerted that are still overdue. Default RUNNING; skips without a sharing
  database.
* ``freshness_checks_sensor``: Dagster's ``build_sensor_for_freshness_checks`` over the ``freshness``
  checks (``assets/freshness.py``), so a feed turns overdue in the UI without a run of its own. Default
  RUNNING: it reads the event log and launches check-only runs that touch no data.
"""

import json
import time
import warnings
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from dagster import (
    AssetChecksDefinition,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunRequest,
    RunStatusSensorContext,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    SupersessionWarning,
    build_sensor_for_freshness_checks,
    run_failure_sensor,
    run_status_sensor,
    sensor,
)

from assets.ingestion import raw_asset_key
from assets.resources import LandingZoneResource
from citybrain.catalog import Catalog, Feed
from citybrain.ingest.landing import claimed_files, file_partition, sha256_of
from citybrain.vocabulary import FILE_TAG, TRIGGER_TAG
from orchestration.alerts import (
    build_failure_alert,
    build_overdue_alert,
    build_stale_alert,
    minimal_failure_alert,
    overdue_clock_key,
    send_alert,
)
from orchestration.jobs import raw_ingestion

LANDING_SENSOR = "landing_zone_sensor"
FAILURE_SENSOR = "run_failure_alert"
STALE_SENSOR = "stale_tables_alert"
OVERDUE_SENSOR = "overdue_applications_alert"
OVERDUE_INTERVAL_SECONDS = 600  # the clocks count days: a check every ten minutes is plenty
FRESHNESS_SENSOR = "freshness_checks_sensor"
CURSOR_VERSION = 1
SHA_PREFIX = 16  # hex digits of the SHA-256 kept in the cursor: enough to tell two versions apart
SETTLE_SECONDS = 30  # a file modified more recently may still be being written: wait for the next tick
MAX_RUNS_PER_TICK = 25
HASH_BUDGET_SECONDS = 30.0  # stop hashing after this long; the rest waits for the next tick
# Files last modified longer ago than this are not watched (nor kept in the cursor): it keeps the cursor
# small (Dagster stores it with every tick) and a first start from replaying the whole landing zone.
LOOKBACK_DAYS = 7
SHA_TAG = "citybrain/sha256"


# --- the cursor --------------------------------------------------------------------------------------


def load_cursor(text: str | None) -> dict[str, list]:
    """``{relative path: [size, mtime_ns, sha256 prefix]}`` of the files already handled."""
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(data, dict) or data.get("v") != CURSOR_VERSION:
        return {}
    return data.get("files", {})


def dump_cursor(files: dict[str, list]) -> str:
    return json.dumps({"v": CURSOR_VERSION, "files": files}, separators=(",", ":"), sort_keys=True)


# --- the landing-zone sensor --------------------------------------------------------------------------


def _last_partition(catalog: Catalog) -> date:
    """The newest daily partition that exists now: yesterday in the catalog's timezone."""
    return datetime.now(ZoneInfo(catalog.partitions.timezone)).date() - timedelta(days=1)


def build_landing_sensor(
    catalog: Catalog,
    *,
    name: str = LANDING_SENSOR,
    settle_seconds: float = SETTLE_SECONDS,
    max_runs_per_tick: int = MAX_RUNS_PER_TICK,
    hash_budget_seconds: float = HASH_BUDGET_SECONDS,
    lookback_days: float = LOOKBACK_DAYS,
    minimum_interval_seconds: int = 60,
    default_status: DefaultSensorStatus = DefaultSensorStatus.STOPPED,
) -> SensorDefinition:
    """The landing-zone file-arrival sensor.

    Default STOPPED: switched on for the first time it requests one run per file of the landing zone
    modified in the last ``lookback_days`` (a fresh demo lake: every file, several dozen runs), each
    re-reading files the nightly may already have loaded (skipped as unchanged, but a run each).
    """
    start = date.fromisoformat(catalog.partitions.start)

    @sensor(
        name=name,
        job=raw_ingestion,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description=(
            "A new or changed delivery in the landing zone (by SHA-256) starts one raw_ingestion run of its "
            "feed and partition; run key <feed>:<partition>:<sha256>."
        ),
    )
    def landing_zone_sensor(context: SensorEvaluationContext, landing: LandingZoneResource):
        root = landing.resolved_path()
        if not root.is_dir():
            return SkipReason(f"no landing zone at {root}")
        known = load_cursor(context.cursor)
        claims = claimed_files(catalog, root)
        files = {rel: entry for rel, entry in known.items() if rel in claims}  # forget vanished files
        # (feed, partition) -> [(file, sha256)]: files of one feed and partition found in the same tick
        # share one run (ingestion reads every file of the partition), keyed by the first of them.
        groups: dict[tuple[str, str | None], list[tuple[str, str]]] = {}
        now, started = time.time(), time.monotonic()
        last_partition = _last_partition(catalog)
        deferred = 0
        for relative, feeds in claims.items():
            if len(groups) >= max_runs_per_tick or time.monotonic() - started > hash_budget_seconds:
                deferred += 1
                continue
            path = root / relative
            try:
                stat = path.stat()
            except FileNotFoundError:
                files.pop(relative, None)
                continue
            if now - stat.st_mtime > lookback_days * 86400:
                files.pop(relative, None)  # old: the nightly and backfills are for those
                continue
            previous = files.get(relative)
            if previous and previous[:2] == [stat.st_size, stat.st_mtime_ns]:
                continue  # unchanged since it was hashed
            if now - stat.st_mtime < settle_seconds:
                deferred += 1
                continue  # may still be being written
            if not path.resolve().is_relative_to(root):
                context.log.warning(f"{relative} resolves outside the landing zone; ignored")
                files[relative] = [stat.st_size, stat.st_mtime_ns, ""]
                continue
            targets: list[tuple[Feed, str | None]] = []
            waiting = False
            for feed in feeds:
                if not feed.is_partitioned:
                    targets.append((feed, None))
                    continue
                partition = file_partition(feed, relative)
                if partition is None:
                    context.log.warning(f"{relative} matches feed {feed.id} but names no partition day")
                elif date.fromisoformat(partition) < start:
                    context.log.warning(
                        f"{relative}: partition {partition} is before the catalog's first day {start}"
                    )
                elif date.fromisoformat(partition) > last_partition:
                    waiting = True  # the day is not over yet: its partition does not exist
                else:
                    targets.append((feed, partition))
            if not targets:
                if waiting:
                    deferred += 1
                else:  # remembered without a hash, so it is not looked at again until it changes
                    files[relative] = [stat.st_size, stat.st_mtime_ns, ""]
                continue
            sha256 = sha256_of(path)
            files[relative] = [stat.st_size, stat.st_mtime_ns, sha256[:SHA_PREFIX]]
            if previous and previous[2] == sha256[:SHA_PREFIX]:
                continue  # touched, same bytes
            for feed, partition in targets:
                groups.setdefault((feed.id, partition), []).append((relative, sha256))
                context.log.info(
                    f"{relative}: {'new' if previous is None else 'changed'} delivery of {feed.id}"
                    + (f" for {partition}" if partition else "")
                    + f" (sha256 {sha256[:12]}…)"
                )
        requests = [
            RunRequest(
                run_key=f"{feed_id}:{partition or ''}:{delivered[0][1]}",
                asset_selection=[raw_asset_key(feed_id)],
                partition_key=partition,
                tags={
                    TRIGGER_TAG: name,
                    FILE_TAG: ", ".join(rel for rel, _ in delivered)[:1000],
                    SHA_TAG: delivered[0][1],
                },
            )
            for (feed_id, partition), delivered in groups.items()
        ]
        cursor = dump_cursor(files)
        if requests:
            return SensorResult(run_requests=requests, cursor=cursor)
        waiting_note = f"; {deferred} file(s) left for a later tick" if deferred else ""
        return SensorResult(
            skip_reason=f"no new or changed delivery among {len(claims)} file(s){waiting_note}",
            cursor=cursor,
        )

    return landing_zone_sensor


# --- run failures -------------------------------------------------------------------------------------


@run_failure_sensor(
    name=FAILURE_SENSOR,
    default_status=DefaultSensorStatus.RUNNING,
    # Every run in the instance, including those `citybrain run` executes in process (they carry no
    # code-location origin, so a sensor watching only its own code location would never see them).
    monitor_all_code_locations=True,
    description=(
        "Logs every failed run and POSTs it as JSON to $CITYBRAIN_ALERT_WEBHOOK_URL when set "
        "(job, run id, failed steps, errors, failed blocking checks, link path)."
    ),
)
def run_failure_alert(context: RunFailureSensorContext) -> None:
    try:
        payload = build_failure_alert(context.instance, context.dagster_run, context.failure_event)
    except Exception as exc:  # still alert, with what is known for sure
        context.log.exception("could not collect the failed run's details")
        payload = minimal_failure_alert(context.dagster_run, f"{type(exc).__name__}: {exc}")
    send_alert(payload, log=context.log)


@run_status_sensor(
    run_status=DagsterRunStatus.SUCCESS,
    name=STALE_SENSOR,
    default_status=DefaultSensorStatus.RUNNING,
    monitor_all_code_locations=True,
    description=(
        "Alerts (log and $CITYBRAIN_ALERT_WEBHOOK_URL) when a run succeeded but its publication held pool "
        "tables back: which, why, since when, which days."
    ),
)
def stale_tables_alert(context: RunStatusSensorContext) -> None:
    payload = build_stale_alert(context.instance, context.dagster_run)
    if payload is not None:
        send_alert(payload, log=context.log)


@sensor(
    name=OVERDUE_SENSOR,
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=OVERDUE_INTERVAL_SECONDS,
    description=(
        "Alerts (log and $CITYBRAIN_ALERT_WEBHOOK_URL) when sharing applications pass their statutory clock, "
        "once per application and clock step."
    ),
)
def overdue_applications_alert(context: SensorEvaluationContext):
    from citybrain.sharing.applications import overdue_report

    try:
        report = overdue_report()
    except Exception as error:  # noqa: BLE001 - a database that is down is reported, the sensor stays up
        context.log.warning(f"sharing database unavailable: {str(error).splitlines()[0]}")
        return SkipReason("sharing database unavailable")
    if report is None:
        return SkipReason("no sharing database in this lake")
    alerted = set(json.loads(context.cursor)) if context.cursor else set()
    overdue = {overdue_clock_key(a): a for a in report}
    new = [a for key, a in overdue.items() if key not in alerted]
    if new:
        send_alert(build_overdue_alert(new), log=context.log)
    # Only the steps still overdue: a decided application leaves the cursor, which stays small.
    context.update_cursor(json.dumps(sorted(overdue)))
    return SkipReason(
        f"{len(new)} newly overdue application(s) alerted" if new else "no newly overdue application"
    )


# --- freshness ----------------------------------------------------------------------------------------


def build_freshness_sensor(freshness_checks: list[AssetChecksDefinition]) -> SensorDefinition:
    with warnings.catch_warnings():
        # Superseded by FreshnessPolicy in 1.13, which measures materialisations, not deliveries
        # (see assets/freshness.py); the sensor itself works as documented.
        warnings.simplefilter("ignore", SupersessionWarning)
        return build_sensor_for_freshness_checks(
            freshness_checks=freshness_checks,
            name=FRESHNESS_SENSOR,
            minimum_interval_seconds=600,
            default_status=DefaultSensorStatus.RUNNING,
        )


def build_sensors(catalog: Catalog, freshness_checks: list[AssetChecksDefinition]) -> list[SensorDefinition]:
    return [
        build_landing_sensor(catalog),
        run_failure_alert,
        stale_tables_alert,
        overdue_applications_alert,
        build_freshness_sensor(freshness_checks),
    ]
