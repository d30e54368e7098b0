"""``citybrain demo``, ``demo-data``, ``demo-ui`` and ``serve-hotline``: the demo city and its services.

The only commands that start a demo service (the demo hotline centre's API), and the only product code
that imports the demo generator (``demo_city``), inside the commands, so nothing else loads it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import time
from collections.abc import Iterator
from datetime import date, timedelta

from citybrain import settings
from orchestration.cli.run import run_job, yesterday
from orchestration.cli.summaries import print_pool_summary
from orchestration.cli.ui import open_ui
from orchestration.dagster_home import dagster_home

HOTLINE_URL_ENV = "CITYBRAIN_HOTLINE_API_URL"  # catalog/sources.yaml, connection hotline_api (demo_city.hotline_api.URL_ENV)


@contextlib.contextmanager
def demo_hotline_api() -> Iterator[str | None]:
    """Serve the demo hotline centre's API on loopback while the block runs and point
    ``CITYBRAIN_HOTLINE_API_URL`` at it, unless that is already set or there is no demo ticket store."""
    store = settings.demo_dir() / "hotline_store"
    if os.environ.get(HOTLINE_URL_ENV) or not store.exists():
        yield None
        return
    from demo_city.hotline_api import served_env

    with served_env(store) as env:
        os.environ.update(env)
        try:
            yield env[HOTLINE_URL_ENV]
        finally:
            os.environ.pop(HOTLINE_URL_ENV, None)


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


def cmd_demo_data(args: argparse.Namespace) -> int:
    from demo_city.generate import DemoConfig, generate_demo_city

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


def cmd_demo(args: argparse.Namespace) -> int:
    from citybrain.publication import tier_paths
    from citybrain.quality.data_docs import data_docs_index

    started = time.monotonic()
    cmd_demo_data(args)
    end = args.end_date or yesterday()
    days = args.days or 7
    start = end - timedelta(days=days - 1)
    with demo_hotline_api():
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
    print(
        f"  Dagster runs:  {dagster_home()}   (open the UI with `citybrain demo-ui`, http://127.0.0.1:3000)"
    )
    return 0 if ok else 1


def cmd_demo_ui(args: argparse.Namespace) -> int:
    with demo_hotline_api() as url:
        if url:
            print(f"demo hotline API serving at {url}")
        return open_ui(args.host, args.port)


def cmd_serve_hotline(args: argparse.Namespace) -> int:
    from demo_city.hotline_api import HotlineApiServer

    server = HotlineApiServer(settings.demo_dir() / "hotline_store", port=args.port)
    print(f"demo hotline API at {server.start()} (Ctrl-C stops)")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
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


def add_commands(sub) -> None:
    p = sub.add_parser("demo", help="generate the demo city and run the main job end to end")
    _add_demo_options(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("demo-data", help="generate the demo city's deliveries into the landing zone")
    _add_demo_options(p)
    p.set_defaults(func=cmd_demo_data)

    p = sub.add_parser("demo-ui", help="the Dagster UI with the demo hotline API served beside it")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3000)
    p.set_defaults(func=cmd_demo_ui)

    p = sub.add_parser("serve-hotline", help="serve the demo hotline API until interrupted")
    p.add_argument("--port", type=int, default=8765)
    p.set_defaults(func=cmd_serve_hotline)
