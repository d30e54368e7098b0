"""The ``citybrain`` command: generate the demo city, run the main job, open the UI, check the catalog.

Runs are executed in-process against the Dagster instance in ``$DAGSTER_HOME`` (default
``$CITYBRAIN_HOME/dagster_home``), so every run started here shows up in the Dagster UI afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from citybrain import settings
from orchestration.dagster_home import dagster_home

SHANGHAI = ZoneInfo("Asia/Shanghai")
HOTLINE_URL_ENV = "CITYBRAIN_HOTLINE_API_URL"


def _yesterday() -> date:
    return datetime.now(SHANGHAI).date() - timedelta(days=1)


@contextlib.contextmanager
def _demo_hotline_api():
    """Serve the demo hotline centre's API on loopback unless a real one is configured."""
    store = settings.demo_dir() / "hotline_store"
    if os.environ.get(HOTLINE_URL_ENV) or not store.exists():
        yield None
        return
    from citybrain.demo.hotline_api import HotlineApiServer

    with HotlineApiServer(store) as server:
        os.environ[HOTLINE_URL_ENV] = server.base_url
        try:
            yield server.base_url
        finally:
            os.environ.pop(HOTLINE_URL_ENV, None)


def run_job(job_name: str, start: str, end: str) -> bool:
    """Execute ``job_name`` for the partition range [start, end] in one run; True if it succeeded."""
    from dagster import DagsterInstance

    from orchestration.definitions import defs
    from orchestration.progress import execute_with_progress

    home = dagster_home()
    from citybrain.scale.preflight import PreflightError, check_run_configuration

    try:  # a Spark target or a PostgreSQL instance that cannot be reached: stop before anything runs
        check_run_configuration(home)
    except PreflightError as error:
        print(f"{job_name} {start} .. {end}: not started: {error}", file=sys.stderr)
        return False
    job = defs.resolve_job_def(job_name)
    tags = {
        "dagster/asset_partition_range_start": start,
        "dagster/asset_partition_range_end": end,
        PROCESS_TAG: _process_token(os.getpid()),
    }
    print(f"{job_name} {start} .. {end}: one line per finished step (Dagster log: CITYBRAIN_LOG_LEVEL=INFO)")
    with DagsterInstance.get() as instance:
        recover_after_killed_runs(instance)
        result = execute_with_progress(job, instance, tags=tags, raise_on_error=False)
    print(f"run {result.run_id}: {'SUCCESS' if result.success else 'FAILURE'} ({job_name}, {start} .. {end})")
    if not result.success:
        for event in result.all_events:
            if event.is_step_failure:
                error = event.step_failure_data.error
                print(f"  FAILED {event.step_key}: {error.message.strip() if error else ''}")
    print_run_summary(result.run_id)
    print_gate_summary(result)
    return result.success


PROCESS_TAG = "citybrain/process"  # host:pid:start time of the `citybrain run` process executing the run


def _process_token(pid: int) -> str:
    """host:pid:start time, so a pid reused by a later process is not mistaken for the run's."""
    import socket

    try:  # field 22 of /proc/<pid>/stat: start time in clock ticks since boot (Linux)
        started = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        started = "?"
    return f"{socket.gethostname()}:{pid}:{started}"


def recover_after_killed_runs(instance) -> None:
    """What a `citybrain run` killed with SIGKILL (OOM killer, power loss) leaves behind, cleaned before the
    next run (docs/RELIABILITY.md): its Dagster run, still STARTED, is marked failed when the process that
    executed it is gone, and an interrupted publication is rolled forward or cleaned up. The DuckDB WAL is
    replayed by DuckDB at the next open, and the lock file is an flock the kernel released with the process."""
    import socket

    from dagster import DagsterRunStatus, RunsFilter

    from citybrain.ingest.warehouse import warehouse_lock
    from citybrain.publication import recover

    host = socket.gethostname()
    active = [DagsterRunStatus.STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.CANCELING]
    for run in instance.get_runs(RunsFilter(statuses=active)):
        token = run.tags.get(PROCESS_TAG, "")
        run_host, _, rest = token.partition(":")
        pid = rest.partition(":")[0]
        if run_host != host or not pid.isdigit() or _process_token(int(pid)) == token:
            continue  # another host's run, a run this CLI did not start, or its process is still alive
        instance.report_run_failed(
            run, message=f"abandoned: the process that executed this run ({token}) is gone (killed?)"
        )
        print(f"  marked run {run.run_id[:8]} FAILURE: its process {token} is gone")
    with warehouse_lock(settings.warehouse_path()):
        rolled_forward = recover()
    if rolled_forward:
        print(f"  completed the interrupted publication of pool version {rolled_forward}")


def print_gate_summary(result) -> None:
    """What the quality gate decided: checks run and failed, and which pool version is live."""
    from citybrain.publication import live_version, tier_paths
    from citybrain.quality.data_docs import data_docs_index

    evaluations = result.get_asset_check_evaluations()
    if not evaluations:
        return
    failed = [e for e in evaluations if not e.passed]
    blocking = [e for e in failed if e.severity.value == "ERROR" or e.blocking]
    print(f"\n  quality gate: {len(evaluations)} checks, {len(failed)} failed ({len(blocking)} blocking)")
    for evaluation in sorted(failed, key=lambda e: (e not in blocking, e.asset_key.to_user_string())):
        kind = "BLOCKING" if evaluation in blocking else "warning "
        print(
            f"    {kind} {evaluation.asset_key.to_user_string()}:{evaluation.check_name}  {evaluation.description or ''}"
        )
    publications = [
        m
        for event in result.get_asset_materialization_events()
        for m in [event.event_specific_data.materialization]
        if m.asset_key and m.asset_key.path == ["pool_publication"]
    ]
    live = live_version()
    if publications:
        print(f"  published pool version {live}: " + ", ".join(str(p) for p in tier_paths().values()))
        stale = publications[-1].metadata.get("stale_tables")
        for table, hold in sorted((stale.value if stale else {}).items()):
            scope = "whole table" if hold["whole"] else "days " + ", ".join(hold["held_days"])
            print(f"    STALE {table} ({scope}, previous content kept): {hold['reason']}")
    else:
        print(f"  pool NOT published in this run; live version stays {live or '(none yet)'}")
    if data_docs_index().exists():
        print(f"  Data Docs: {data_docs_index()}")


def print_run_summary(run_id: str) -> None:
    import duckdb

    path = settings.warehouse_path()
    if not path.exists():
        return
    con = duckdb.connect(str(path), read_only=True, config=settings.duckdb_config())
    try:
        rows = con.execute(
            """
            SELECT feed_id, count(*) FILTER (WHERE status IN ('loaded', 'superseded')) AS deliveries,
                   sum(rows_received), sum(rows_loaded), sum(rows_quarantined),
                   count(*) FILTER (WHERE status = 'failed') AS failed
            FROM raw.ingestion_log WHERE batch_id = ? GROUP BY feed_id ORDER BY feed_id
            """,
            [run_id],
        ).fetchall()
    finally:
        con.close()
    if not rows:
        print("  (no new deliveries: everything was already loaded)")
        return
    print(f"  {'feed':<24}{'deliveries':>11}{'received':>11}{'loaded':>11}{'quarantined':>13}{'failed':>8}")
    for feed_id, deliveries, received, loaded, quarantined, failed in rows:
        print(f"  {feed_id:<24}{deliveries:>11}{received:>11}{loaded:>11}{quarantined:>13}{failed:>8}")


EXAMPLE_QUERY = """\
SELECT d.district_name, i.month, i.registered_population,
       round(i.est_resident_population) AS est_residents,
       round(i.beds_per_1000_residents, 2) AS beds_per_1000,
       round(i.share_residents_near_medical, 3) AS near_medical
FROM pool.ind_district_monthly AS i JOIN pool.dim_district AS d USING (district_code)
ORDER BY est_residents DESC LIMIT 5"""


def print_pool_summary() -> None:
    """The published tiers' tables with row counts and one example query, so a newcomer knows where to
    start. Read from the published tier files (row counts from their ``meta.publication``), never from the
    warehouse; the example runs on the open tier, which holds no personal data."""
    import json

    import duckdb

    from citybrain.publication import tier_paths

    paths = {tier: path for tier, path in tier_paths().items() if path.exists()}
    if not paths:
        return
    open_tables: set[str] = set()
    for tier, path in paths.items():
        with duckdb.connect(str(path), read_only=True) as con:
            (table_rows,) = con.execute("SELECT table_rows FROM meta.publication").fetchone()
        table_rows = json.loads(table_rows)
        print(f"\n  published {tier} tier {path} (schema pool):")
        for table, rows in sorted(table_rows.items()):
            print(f"    {table.removeprefix('pool.'):<32}{rows:>12,} rows")
        if tier == "open":
            open_tables = {t.removeprefix("pool.") for t in table_rows}
    if {"ind_district_monthly", "dim_district"} <= open_tables:
        print('\n  example query (citybrain query --local-operator "...", or --token T within your grants):')
        print("\n".join("    " + line for line in EXAMPLE_QUERY.splitlines()))
        with duckdb.connect(str(paths["open"]), read_only=True) as con:
            print("\n" + "\n".join("    " + line for line in str(con.sql(EXAMPLE_QUERY)).splitlines()))


def cmd_demo_data(args: argparse.Namespace) -> int:
    from citybrain.demo.generate import DemoConfig, generate_demo_city

    config = DemoConfig(
        **{
            k: v
            for k, v in {
                "counties": args.counties,
                "residents": args.residents,
                "days": args.days,
                "seed": args.seed,
                "defect_rate": args.defect_rate,
                "end_date": args.end_date,
            }.items()
            if v is not None
        }
    )
    started = time.monotonic()
    summary = generate_demo_city(config)
    prepare_demo_lake(summary.config.counties)
    print(f"demo city written to {settings.landing_dir()} in {time.monotonic() - started:.1f} s")
    print(f"ground truth: {summary.ground_truth}")
    return 0


def prepare_demo_lake(counties: list[str]) -> None:
    """Point the lake at the demo city (city.yaml) and give it a random pseudonym salt of its own,
    unless the environment provides one. Real deployments set CITYBRAIN_PSEUDONYM_SALT instead."""
    from citybrain.reference.city import write_city

    write_city(settings.home() / "city.yaml", counties, "示范城市", "Demo city")
    secret = settings.home() / "secrets" / "pseudonym_salt"
    if not os.environ.get(settings.PSEUDONYM_SALT_ENV) and not secret.exists():
        secret.parent.mkdir(parents=True, exist_ok=True)
        secret.touch(mode=0o600)
        secret.write_text(secrets.token_hex(32), encoding="utf-8")


def cmd_run(args: argparse.Namespace) -> int:
    start = args.start or args.date or _yesterday().isoformat()
    end = args.end or args.date or start
    with _demo_hotline_api():
        return 0 if run_job(args.job, start, end) else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from citybrain.publication import tier_paths
    from citybrain.quality.data_docs import data_docs_index

    started = time.monotonic()
    cmd_demo_data(args)
    end = args.end_date or _yesterday()
    days = args.days or 7
    start = end - timedelta(days=days - 1)
    with _demo_hotline_api():
        ok = run_job("city_nightly", start.isoformat(), end.isoformat())
    print_pool_summary()
    print()
    print(f"demo finished in {time.monotonic() - started:.0f} s: {'OK' if ok else 'FAILED'}")
    for tier, path in tier_paths().items():
        print(
            f"  {tier + ':':<15}{path}   (published pool, {tier} tier: read with `citybrain query`, per grants)"
        )
    print("  audit log:     `citybrain audit verify`, `citybrain audit query` (auditor role)")
    print(f"  Data Docs:     {data_docs_index()}")
    print(f"  warehouse:     {settings.warehouse_path()}   (raw.<feed>, raw.quarantine, raw.ingestion_log)")
    print(f"  landing zone:  {settings.landing_dir()}")
    print(f"  ground truth:  {settings.demo_dir() / 'ground_truth'}")
    print(f"  Dagster runs:  {dagster_home()}   (open the UI with `make ui`, http://127.0.0.1:3000)")
    return 0 if ok else 1


def cmd_status(args: argparse.Namespace) -> int:
    from orchestration.status import main as status_main

    return status_main(as_json=args.json)


def cmd_ui(args: argparse.Namespace) -> int:
    dagster_home()
    with _demo_hotline_api() as url:
        if url:
            print(f"demo hotline API serving at {url}")
        command = [
            str(Path(sys.executable).with_name("dagster")),
            "dev",
            "-w",
            str(settings.REPO_ROOT / "workspace.yaml"),
            "-h",
            args.host,
            "-p",
            str(args.port),
        ]
        process = subprocess.Popen(command, cwd=settings.REPO_ROOT, start_new_session=True)
        try:
            return process.wait()
        except KeyboardInterrupt:
            os.killpg(process.pid, 15)
            return process.wait()


def cmd_serve_hotline(args: argparse.Namespace) -> int:
    from citybrain.demo.hotline_api import HotlineApiServer

    server = HotlineApiServer(settings.demo_dir() / "hotline_store", port=args.port)
    print(f"demo hotline API at {server.start()} (Ctrl-C stops)")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
    return 0


def cmd_catalog_validate(args: argparse.Namespace) -> int:
    from citybrain.catalog import CatalogError, load_catalog

    try:
        catalog = load_catalog(args.path)
    except CatalogError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(
        f"{args.path or settings.catalog_path()}: {len(catalog.feeds)} feeds, {len(catalog.providers)} providers: OK"
    )
    return 0


def cmd_landing_check(args: argparse.Namespace) -> int:
    from citybrain.catalog import load_catalog
    from citybrain.ingest.landing import unclaimed_files

    landing = settings.landing_dir()
    unclaimed = unclaimed_files(load_catalog(), landing)
    for relative in unclaimed:
        print(f"unknown feed: {relative} matches no delivery path in the catalog")
    print(f"{landing}: {len(unclaimed)} file(s) no feed claims")
    return 1 if unclaimed else 0


def cmd_resources_export(args: argparse.Namespace) -> int:
    from citybrain.resource_catalog.export import export_resource_catalog

    result = export_resource_catalog(Path(args.out) if args.out else None)
    print(f"resource catalog: {len(result.catalog.resources)} resources -> {result.directory / 'current'}")
    for kind, path in result.files.items():
        print(f"  {kind:<10}{path}")
    return 0


def _add_demo_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--counties", nargs="+", help="county-level GB/T 2260 codes (default: Hangzhou's districts)"
    )
    parser.add_argument("--residents", type=int, help="population (default 200000)")
    parser.add_argument("--days", type=int, help="days of daily feeds (default 7)")
    parser.add_argument(
        "--end-date", type=date.fromisoformat, help="last day, YYYY-MM-DD (default: yesterday)"
    )
    parser.add_argument("--seed", type=int)
    parser.add_argument("--defect-rate", type=float, help="share of records with an injected defect")


def cmd_trace(args: argparse.Namespace) -> int:
    import json
    from contextlib import nullcontext
    from dataclasses import asdict

    from citybrain.lineage.trace import TraceError, format_trace, trace
    from citybrain.sharing.query_cli import open_session

    key = None
    if args.key:
        pairs = [k.partition("=") for k in args.key]
        if any(not sep or not column for column, sep, _ in pairs):
            print("citybrain trace: --key takes COLUMN=VALUE", file=sys.stderr)
            return 2
        key = {column: value for column, _, value in pairs}
    try:
        with open_session(args, via="trace") if key else nullcontext() as session:
            result = trace(args.table, day=args.date, key=key, session=session)
    except (TraceError, PermissionError) as error:
        print(f"citybrain trace: {error}", file=sys.stderr)
        return 2
    print(
        json.dumps(asdict(result), ensure_ascii=False, indent=2, default=str)
        if args.json
        else format_trace(result)
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="citybrain", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="generate the demo city and run the main job end to end")
    _add_demo_options(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("demo-data", help="generate the demo city's deliveries into the landing zone")
    _add_demo_options(p)
    p.set_defaults(func=cmd_demo_data)

    p = sub.add_parser("run", help="run a job for one day or a range of days, in one run")
    p.add_argument("--job", default="city_nightly")
    p.add_argument("--date", help="partition day YYYY-MM-DD (default: yesterday, Asia/Shanghai)")
    p.add_argument("--start")
    p.add_argument("--end")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("status", help="latest runs, failed checks, quarantined rows, overdue feeds")
    p.add_argument("--json", action="store_true", help="machine-readable output for scripts")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("ui", help="start the Dagster UI (and the demo hotline API when the demo is present)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3000)
    p.set_defaults(func=cmd_ui)

    p = sub.add_parser("serve-hotline", help="serve the demo hotline API until interrupted")
    p.add_argument("--port", type=int, default=8765)
    p.set_defaults(func=cmd_serve_hotline)

    p = sub.add_parser("catalog", help="source catalog tools")
    catalog_sub = p.add_subparsers(dest="catalog_command", required=True)
    v = catalog_sub.add_parser("validate", help="validate the source catalog")
    v.add_argument("path", nargs="?")
    v.set_defaults(func=cmd_catalog_validate)

    p = sub.add_parser("landing", help="landing zone tools")
    landing_sub = p.add_subparsers(dest="landing_command", required=True)
    v = landing_sub.add_parser("check", help="list delivered files that no catalog feed reads")
    v.set_defaults(func=cmd_landing_check)

    p = sub.add_parser("governance", help="data governance tools")
    governance_sub = p.add_subparsers(dest="governance_command", required=True)
    v = governance_sub.add_parser("check", help="compile the dbt project and check the pool's classification")
    v.set_defaults(
        func=lambda args: __import__("citybrain.governance.classification", fromlist=["main"]).main()
    )

    p = sub.add_parser("resources", help="resource catalog (政务数据资源目录) tools")
    resources_sub = p.add_subparsers(dest="resources_command", required=True)
    v = resources_sub.add_parser("export", help="write the resource catalog as CSV, JSON and HTML")
    v.add_argument("--out", help="export directory (default: $CITYBRAIN_HOME/catalog_export)")
    v.set_defaults(func=cmd_resources_export)

    p = sub.add_parser("trace", help="the deliveries, runs and checks behind a published table, day or row")
    p.add_argument("table", help="pool.<table>")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--date", help="one day of a daily table (YYYY-MM-DD)")
    which.add_argument(
        "--key", action="append", metavar="COLUMN=VALUE", help="the row whose day is traced (repeatable)"
    )
    from citybrain.sharing.query_cli import add_identity_arguments

    add_identity_arguments(p)  # who reads the row for --key: a token's grants, or --local-operator
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_trace)

    from citybrain.sharing.query_cli import add_commands as add_access_commands

    add_access_commands(sub)

    from citybrain.sharing.cli import add_commands as add_sharing_commands

    add_sharing_commands(sub)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
