"""``citybrain status``: what an operator asks first — did last night work, what failed, what is late.

Reads the Dagster instance (runs), the warehouse (ingestion log, quarantine, check results) and the
published pool. The warehouse is opened read-only under its lock; while a run is writing, status waits a
few seconds, then says so and shows what it could read instead of waiting for the run.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import duckdb

from citybrain import settings
from citybrain.catalog import load_catalog
from citybrain.publication import list_publications, tier_paths
from citybrain.quality.freshness import judge, last_new_data
from citybrain.warehouse import Warehouse

RUNS_SHOWN = 10
STATUS_LOCK_WAIT_SECONDS = 5.0


def collect_status(days: int = 7) -> dict:
    status = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "lake": str(settings.home()),
        "runs": _latest_runs(),
        "published": _published(),
        "overdue_applications": _overdue_applications(),
    }
    # A run that writes holds the warehouse for minutes: status says so instead of waiting for it.
    warehouse = replace(Warehouse.from_settings(), lock_timeout_seconds=STATUS_LOCK_WAIT_SECONDS)
    try:
        with warehouse.connect(read_only=True) as con:
            status["quarantine"] = _quarantine(con, days)
            status["failed_checks"] = _failed_checks(con)
            status["overdue_feeds"] = _overdue_feeds(con)
    except (duckdb.Error, TimeoutError) as error:
        status["warehouse_unavailable"] = f"{warehouse.path}: {str(error).splitlines()[0]}"
    return status


def _latest_runs() -> list[dict]:
    from dagster import DagsterInstance

    from orchestration.dagster_home import dagster_home

    dagster_home()
    with DagsterInstance.get() as instance:
        records = instance.get_run_records(limit=RUNS_SHOWN)
        runs = []
        for record in records:
            run = record.dagster_run
            tags = run.tags
            partitions = tags.get("dagster/partition") or "..".join(
                t
                for t in (
                    tags.get("dagster/asset_partition_range_start"),
                    tags.get("dagster/asset_partition_range_end"),
                )
                if t
            )
            runs.append(
                {
                    "run_id": run.run_id,
                    "job": run.job_name,
                    "status": run.status.value,
                    "partitions": partitions or None,
                    "started": _iso(record.start_time),
                    "ended": _iso(record.end_time),
                    "trigger": tags.get("dagster/schedule_name")
                    or tags.get("dagster/sensor_name")
                    or tags.get("dagster/backfill")
                    or "manual",
                }
            )
        return runs


def _published() -> dict | None:
    publications = list_publications()
    if not publications:
        return None
    last = publications[-1]
    published = {k: last[k] for k in ("version", "run_id", "published_at", "partitions")}
    # one version id across tiers; records from before the tiers have no "paths"
    published["tiers"] = {
        tier: str(path) for tier, path in tier_paths().items() if tier in last.get("paths", {})
    }
    # Tables the live version holds back (citybrain/staleness.py); records from before holds have none.
    published["stale_tables"] = last.get("stale", {})
    return published


def _quarantine(con, days: int) -> list[dict]:
    rows = con.execute(
        """
        SELECT feed_id, sum(rows_received), sum(rows_loaded), sum(rows_quarantined)
        FROM raw.ingestion_log
        WHERE status IN ('loaded', 'superseded') AND finished_at >= now() - to_days(CAST(? AS INTEGER))
        GROUP BY feed_id HAVING sum(rows_quarantined) > 0 ORDER BY sum(rows_quarantined) DESC
        """,
        [days],
    ).fetchall()
    return [
        {"feed": f, "received": int(r), "loaded": int(lo), "quarantined": int(q), "days": days}
        for f, r, lo, q in rows
    ]


def _failed_checks(con) -> list[dict]:
    """Failed expectations of the latest run that checked each suite."""
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'quality' AND table_name = 'expectation_results'"
    ).fetchone()[0]
    if not exists:
        return []
    rows = con.execute(
        """
        WITH latest AS (
            SELECT suite, arg_max(run_id, evaluated_at) AS run_id FROM quality.expectation_results GROUP BY suite
        )
        SELECT r.suite, r.partition_key, r.severity, r.rule, r.column_name, r.unexpected_count, r.run_id
        FROM quality.expectation_results AS r JOIN latest USING (suite, run_id)
        WHERE NOT r.success
        ORDER BY r.severity, r.suite, r.partition_key
        """
    ).fetchall()
    keys = ("suite", "partition", "severity", "expectation", "column", "unexpected", "run_id")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def _overdue_feeds(con, now: datetime | None = None) -> list[dict]:
    """Feeds overdue by the freshness rule (``citybrain.quality.freshness``, as the Dagster check judges
    them), from the ingestion log."""
    last = last_new_data(con)
    now = now or datetime.now(UTC)
    overdue = []
    for feed in load_catalog().feeds:
        delivered = last.get(feed.id)
        freshness = judge(delivered.timestamp() if delivered else None, feed.max_age_hours, now.timestamp())
        if freshness.overdue:
            age = freshness.age_hours
            overdue.append(
                {
                    "feed": feed.id,
                    "provider": feed.provider,
                    "cadence": feed.cadence,
                    "last_delivery": _iso(delivered.timestamp()) if delivered else None,
                    "age_hours": None if age is None else round(age, 1),
                    "max_age_hours": feed.max_age_hours,
                }
            )
    return overdue


def _overdue_applications() -> list[dict] | None:
    """Sharing applications past their statutory clock (docs/SHARING.md); None without a sharing database."""
    from citybrain.sharing.applications import overdue_report

    try:
        return overdue_report()
    except Exception as error:  # noqa: BLE001 - status reports what it can read
        return [{"error": f"sharing database unavailable: {str(error).splitlines()[0]}"}]


def _iso(timestamp: float | None) -> str | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def print_status(status: dict) -> None:
    print(f"City Brain Lake status — {status['lake']} ({status['generated_at']})")
    print("\nlatest runs:")
    for run in status["runs"] or [{"job": "(no runs yet)"}]:
        if "run_id" not in run:
            print("  (no runs yet)")
            continue
        print(
            f"  {run['status']:<9} {run['job']:<16} {run['partitions'] or '-':<23} "
            f"{run['started'] or '':<26} {run['trigger']:<24} {run['run_id'][:8]}"
        )
    published = status["published"]
    print(
        "\npublished pool: "
        + (
            f"version {published['version']} (run {published['run_id'][:8]}, {published['published_at']})"
            if published
            else "nothing published yet"
        )
    )
    for tier, path in (published or {}).get("tiers", {}).items():
        print(f"  {tier:<12} {path}")
    stale = (published or {}).get("stale_tables", {})
    if published:
        print(f"\nstale tables (held back, previous content kept): {len(stale) or 'none'}")
    for table, hold in sorted(stale.items()):
        scope = "whole table" if hold["whole"] else "days " + ", ".join(hold["held_days"])
        print(f"  {table:<40} {scope:<24} since {hold['stale_since']}: {hold['reason']}")
    overdue_applications = status.get("overdue_applications")
    if overdue_applications is not None:
        print(f"\noverdue sharing applications: {len(overdue_applications) or 'none'}")
        for a in overdue_applications:
            print(f"  {a['error']}" if "error" in a else f"  #{a['application_id']} {a['resource_code']} {a['status']} "
                  f"(provider {a['provider']}) due {a['due_on']}, {a['days_late']} days late")  # fmt: skip
    if "warehouse_unavailable" in status:
        print(f"\nwarehouse busy or missing, details skipped: {status['warehouse_unavailable']}")
        return
    failed = status["failed_checks"]
    print(f"\nfailed checks (latest run of each suite): {len(failed)}")
    for check in failed[:20]:
        where = f"{check['suite']}[{check['partition']}]" if check["partition"] else check["suite"]
        column = f"({check['column']})" if check["column"] else ""
        print(
            f"  {check['severity']:<8} {where:<48} {check['expectation']}{column}  unexpected={check['unexpected']}"
        )
    print("\nquarantined rows, last 7 days:")
    for q in status["quarantine"] or []:
        print(f"  {q['feed']:<24} {q['quarantined']:>8} of {q['received']:>9} received")
    if not status["quarantine"]:
        print("  none")
    print("\noverdue feeds:")
    for feed in status["overdue_feeds"]:
        age = "never delivered" if feed["age_hours"] is None else f"{feed['age_hours']} h old"
        print(f"  {feed['feed']:<24} {feed['cadence']:<8} {age} (allowed {feed['max_age_hours']:.0f} h)")
    if not status["overdue_feeds"]:
        print("  none")


def main(as_json: bool) -> int:
    status = collect_status()
    if as_json:
        print(json.dumps(status, ensure_ascii=False, indent=2))
    else:
        print_status(status)
    return 0
