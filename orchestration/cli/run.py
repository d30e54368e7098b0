"""``citybrain run``: a job for one day or a range of days, in one run, in this process.

A production command: it reads every API at the URL the catalog and the environment give
(``CITYBRAIN_HOTLINE_API_URL``...), starts no demo service, and says before the run which API nothing
answers at (the feeds behind it then fail, and only the tables built from them go stale).
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from citybrain import settings
from orchestration.cli.recovery import PROCESS_TAG, process_token, recover_after_killed_runs
from orchestration.cli.summaries import print_gate_summary, print_run_summary
from orchestration.dagster_home import dagster_home

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Read ahead by the warm-up thread of `citybrain run` (orchestration/warm_imports.py).
WARM_CALLS = ("citybrain.quality.validate:prepare_run_values",)


def yesterday() -> date:
    return datetime.now(SHANGHAI).date() - timedelta(days=1)


def warn_unreachable_apis() -> None:
    """One line on stderr per HTTP API that a feed reads and nothing answers at."""
    from citybrain.catalog import load_catalog
    from citybrain.ingest.reachability import unreachable_http_connections

    for problem in unreachable_http_connections(load_catalog()):
        print(f"WARNING {problem}", file=sys.stderr)


def start_read_ahead(job, start: str, end: str):
    """The run's large new file deliveries and database fetches read in a second process while its first
    steps run (``citybrain.ingest.read_ahead``); None when there are none."""
    from assets.ingestion import RAW_PREFIX
    from citybrain.catalog import load_catalog
    from citybrain.ingest import read_ahead
    from citybrain.warehouse import Warehouse

    feed_ids = {
        k.path[1] for k in job.asset_layer.selected_asset_keys if len(k.path) == 2 and k.path[0] == RAW_PREFIX
    }
    first, last = date.fromisoformat(start), date.fromisoformat(end)
    days = [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]
    return read_ahead.start_for_this_process(
        load_catalog(), feed_ids, days, settings.landing_dir(), Warehouse.from_settings(None).path
    )


def run_job(job_name: str, start: str, end: str) -> bool:
    """Execute ``job_name`` for the partition range [start, end] in one run; True if it succeeded."""
    from dagster import DagsterInstance

    from citybrain.ingest import read_ahead
    from citybrain.quality.data_docs import defer_updates, wait_for_data_docs
    from citybrain.scale import dbt_zygote
    from citybrain.scale.preflight import PreflightError, check_run_configuration
    from orchestration.definitions import defs
    from orchestration.executors import PRELOADED_MODULES, runs_dbt
    from orchestration.progress import execute_with_progress
    from orchestration.warm_imports import warm_imports

    home = dagster_home()
    try:  # a Spark target or a PostgreSQL instance that cannot be reached: stop before anything runs
        check_run_configuration(home)
    except PreflightError as error:
        print(f"{job_name} {start} .. {end}: not started: {error}", file=sys.stderr)
        return False
    warn_unreachable_apis()
    job = defs.resolve_job_def(job_name)
    tags = {
        "dagster/asset_partition_range_start": start,
        "dagster/asset_partition_range_end": end,
        PROCESS_TAG: process_token(os.getpid()),
    }
    print(f"{job_name} {start} .. {end}: one line per finished step (Dagster log: CITYBRAIN_LOG_LEVEL=INFO)")
    # the check steps' Great Expectations and their suites' run values, while ingestion runs
    warm_imports(PRELOADED_MODULES, calls=WARM_CALLS)
    # dbt imported once for the run's dbt steps
    zygote = dbt_zygote.start_for_this_process() if runs_dbt(job) else None
    reading = None
    defer_updates(True)  # Data Docs rendered while the next steps run (citybrain/quality/data_docs.py)
    try:
        reading = start_read_ahead(job, start, end)  # the large deliveries, while the first steps run
        with DagsterInstance.get() as instance:
            recover_after_killed_runs(instance)
            result = execute_with_progress(job, instance, tags=tags, raise_on_error=False)
    finally:
        docs_failures = wait_for_data_docs()
        defer_updates(False)
        dbt_zygote.stop_for_this_process(zygote)
        read_ahead.stop_for_this_process(reading)
    for failure in docs_failures:
        print(f"WARNING Data Docs not updated: {failure}", file=sys.stderr)
    print(f"run {result.run_id}: {'SUCCESS' if result.success else 'FAILURE'} ({job_name}, {start} .. {end})")
    if not result.success:
        for event in result.all_events:
            if event.is_step_failure:
                error = event.step_failure_data.error
                print(f"  FAILED {event.step_key}: {error.message.strip() if error else ''}")
    print_run_summary(result.run_id)
    print_gate_summary(result)
    return result.success


def cmd_run(args: argparse.Namespace) -> int:
    start = args.start or args.date or yesterday().isoformat()
    end = args.end or args.date or start
    return 0 if run_job(args.job, start, end) else 1


def add_commands(sub) -> None:
    p = sub.add_parser("run", help="run a job for one day or a range of days, in one run")
    p.add_argument("--job", default="city_nightly")
    p.add_argument("--date", help="partition day YYYY-MM-DD (default: yesterday, Asia/Shanghai)")
    p.add_argument("--start")
    p.add_argument("--end")
    p.set_defaults(func=cmd_run)
