"""Load on the sharing API while publications swap versions (issue 21.7).

``clients`` token holders (50 by default), each with their own account, application and grant (a row filter
on district), read pages and CSV exports of a published table through the HTTP API for ``seconds``, while
this process publishes a new version of the pool every ``interval`` seconds through the real ``publish``.
The server is ``citybrain.sharing.api`` under uvicorn in a process of its own; the clients are threads of
this one (urllib, one connection a request).

Every published version stamps its rows with a generation number, and each response says which version it
read: a response whose rows mix generations, or whose generation is not the one of the version it names, is
a torn read. Errors are any non-200 answer or failed request.

The floor, measured in the same run on the same machine: the same page and export queries run directly on
the live tier file with DuckDB (open read-only, query, close), one after another. Printed: p50/p95 of each,
the ratio, errors, torn reads, versions seen; ``--record`` appends them to bench/RESULTS.md.

    .venv/bin/python bench/sharing_load.py [--clients 50] [--seconds 30] [--rows 200000] [--record]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from citybrain.ingest.warehouse import run_sql, sql_text  # noqa: E402
from citybrain.publication import publish, tier_path  # noqa: E402
from citybrain.resource_catalog.build import DataItem, Resource, ResourceCatalog  # noqa: E402
from citybrain.resource_catalog.export import write_json  # noqa: E402

DISTRICTS = [f"33{n:04d}" for n in range(1, 13)]
CLASSIFICATION = {"fct_trips": "open"}
CODE = "330100-JTJ-00001"
PAGE = 100
SERVER = """
import sys
from citybrain.sharing.api import serve
from citybrain.sharing.config import Limits, SharingConfig
from citybrain.sharing.store import Store
limits = Limits(requests_per_minute=1_000_000, max_page_size=1000, max_result_rows=100_000, max_export_rows=100_000)
serve(Store(sys.argv[1]), SharingConfig(limits=limits), port=int(sys.argv[2]))
"""


def build_warehouse(path: Path, rows: int, generation: int) -> None:
    with duckdb.connect(str(path)) as con:
        run_sql(con, sql_text("schema.sql"))
        con.execute("CREATE SCHEMA IF NOT EXISTS pool")
        districts = "[" + ", ".join(f"'{d}'" for d in DISTRICTS) + "]"
        con.execute(
            f"CREATE OR REPLACE TABLE pool.fct_trips AS SELECT range AS trip_id, "
            f"{districts}[1 + range % {len(DISTRICTS)}] AS district_code, "
            f"(range * 7919) % 1000 AS trips, {generation} AS generation FROM range({rows})"
        )


def write_catalog(path: Path) -> None:
    from dataclasses import fields

    defaults = {f.name: "" for f in fields(Resource) if f.type == "str"}
    columns = ["trip_id", "district_code", "trips", "generation"]
    resource = Resource(
        **{**defaults, "code": CODE, "key": "pool:fct_trips", "kind": "pool", "table": "pool.fct_trips",
           "classification": "open", "provider_code": "JTJ", "name": "fct_trips"},
        source_providers=[], last_updated=None, row_count=None, quality_score=None, version=None,
        items=[DataItem(c, c, "", "", "VARCHAR", "open") for c in columns],
    )  # fmt: skip
    catalog = ResourceCatalog(
        city_name="基准市", city_name_en="Bench", division_code="330100",
        generated_at=datetime.now(UTC).isoformat(), sources=[], resources=[resource],
    )  # fmt: skip
    write_json(catalog, path)


def grant_clients(home: Path, clients: int) -> tuple[str, list[tuple[str, str]]]:
    """A SQLite store with ``clients`` consumers, each granted two districts; returns its URL and
    (token, district) pairs."""
    from citybrain.sharing import accounts, applications, tokens
    from citybrain.sharing.config import SharingConfig
    from citybrain.sharing.resources import load_resources
    from citybrain.sharing.store import Store

    url = f"sqlite:///{home / 'sharing.db'}"
    store = Store(url).create_all()
    write_catalog(home / "catalog.json")
    resource = load_resources(home / "catalog.json")[CODE]
    config = SharingConfig()
    approver = accounts.create_account(store, "approver", "JTJ", "provider_approver", "bench password 1")
    holders = []
    for i in range(clients):
        consumer = accounts.create_account(store, f"client{i:03d}", "CJJ", "consumer", "bench password 1")
        districts = [DISTRICTS[i % len(DISTRICTS)], DISTRICTS[(i + 5) % len(DISTRICTS)]]
        application = applications.apply(
            store, config, consumer, resource, purpose="load benchmark of the sharing API",
            columns=["trip_id", "district_code", "trips", "generation"], row_filter_column="district_code",
            row_filter_values=districts, period_end=date.today() + timedelta(days=7),
        )  # fmt: skip
        applications.decide(store, approver, application.id, "approve")
        holders.append((tokens.issue_token(store, consumer, "bench").secret, districts[0]))
    store.engine.dispose()
    return url, holders


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Results:
    def __init__(self):
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = {"page": [], "export": []}
        self.errors: list[str] = []
        self.torn: list[str] = []
        self.versions: set[str] = set()


def _get(url: str, token: str) -> tuple[int, bytes, dict]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def client(base: str, token: str, district: str, stop: float, generations: dict, results: Results) -> None:
    rng = random.Random(token)
    while time.monotonic() < stop:
        kind = "page" if rng.random() < 0.7 else "export"
        if kind == "page":
            query = {"filter": f"district_code:{district}", "sort": "-trips", "limit": PAGE}
            url = f"{base}/v1/tables/fct_trips/rows?{urllib.parse.urlencode(query)}"
        else:
            query = {"filter": f"district_code:{district}", "format": "csv"}
            url = f"{base}/v1/tables/fct_trips/export?{urllib.parse.urlencode(query)}"
        started = time.perf_counter()
        try:
            status, body, headers = _get(url, token)
        except OSError as error:
            with results.lock:
                results.errors.append(f"{kind}: {error}")
            continue
        elapsed = time.perf_counter() - started
        if status != 200:
            with results.lock:
                results.errors.append(f"{kind}: HTTP {status} {body[:200]!r}")
            continue
        if kind == "page":
            page = json.loads(body)
            version, seen = page["version"], {row["generation"] for row in page["rows"]}
        else:
            version = headers.get("x-pool-version") or headers.get("X-Pool-Version")
            rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
            seen = {int(row["generation"]) for row in rows}
        expected = generations.get(version)
        with results.lock:
            results.latency[kind].append(elapsed)
            results.versions.add(version)
            if len(seen) > 1 or (expected is not None and seen and seen != {expected}):
                results.torn.append(f"{kind} {version}: generations {sorted(seen)} (expected {expected})")


def floor(pool: Path, districts: list[str], repeats: int) -> dict[str, list[float]]:
    """The same page and export read directly from the live open tier with DuckDB, sequentially."""
    timings: dict[str, list[float]] = {"page": [], "export": []}
    live = tier_path("open", pool)
    for i in range(repeats):
        district = districts[i % len(districts)]
        for kind, sql in (
            (
                "page",
                f"SELECT * FROM pool.fct_trips WHERE district_code = ? ORDER BY trips DESC LIMIT {PAGE}",
            ),
            ("export", "SELECT * FROM pool.fct_trips WHERE district_code = ?"),
        ):
            started = time.perf_counter()
            with duckdb.connect(str(live), read_only=True) as con:
                table = con.execute(sql, [district]).to_arrow_table()
                if kind == "export":
                    buffer = io.StringIO()
                    csv.writer(buffer).writerows(table.to_pylist())
            timings[kind].append(time.perf_counter() - started)
    return timings


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between publications")
    parser.add_argument("--record", action="store_true", help="append the result to bench/RESULTS.md")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="sharing_load_"))
    os.environ["CITYBRAIN_HOME"] = str(home)
    os.environ["CITYBRAIN_AUDIT_DIR"] = str(home / "audit")
    warehouse, pool = home / "warehouse.duckdb", home / "pool"
    generations: dict[str, int] = {}
    build_warehouse(warehouse, args.rows, 0)
    generations[publish(warehouse, "bench-0", [], CLASSIFICATION, directory=pool).version] = 0
    url, holders = grant_clients(home, args.clients)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, url, str(port)],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/openapi.json", timeout=2).read()
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise SystemExit(
                    f"the API server did not start: {server.stderr.read().decode()[-2000:]}"
                ) from None
            time.sleep(0.2)

    results = Results()
    stop = time.monotonic() + args.seconds
    threads = [
        threading.Thread(target=client, args=(base, token, district, stop, generations, results))
        for token, district in holders
    ]
    for thread in threads:
        thread.start()
    published = 1
    while time.monotonic() < stop:
        time.sleep(args.interval)
        build_warehouse(warehouse, args.rows, published)
        version = publish(warehouse, f"bench-{published}", [], CLASSIFICATION, directory=pool).version
        generations[version] = published
        published += 1
    for thread in threads:
        thread.join()
    server.terminate()
    server.wait(30)

    base_line = floor(pool, DISTRICTS, 60)
    lines = [
        f"## Sharing API under load — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"{args.clients} token holders for {args.seconds:g} s, table of {args.rows:,} rows (12 districts, each "
        f"client granted 2), a publication every {args.interval:g} s ({published} versions, "
        f"{len(results.versions)} seen by clients); machine: {os.cpu_count()} cores.",
        "",
        "| request | count | p50 ms | p95 ms | bare DuckDB p50 ms | p95 ms | ratio p50 |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind in ("page", "export"):
        got, bare = results.latency[kind], base_line[kind]
        if not got:
            lines.append(f"| {kind} | 0 | – | – | – | – | – |")
            continue
        lines.append(
            f"| {kind} | {len(got)} | {percentile(got, 50) * 1000:.1f} | {percentile(got, 95) * 1000:.1f} | "
            f"{percentile(bare, 50) * 1000:.1f} | {percentile(bare, 95) * 1000:.1f} | "
            f"{percentile(got, 50) / percentile(bare, 50):.1f}× |"
        )
    lines += [
        "",
        f"errors: {len(results.errors)}; torn reads: {len(results.torn)}",
        *(f"- {e}" for e in (results.errors + results.torn)[:10]),
        "",
        f"The API latency includes {args.clients} clients sharing {os.cpu_count()} cores with the server and the publisher; the floor is one "
        "query at a time on an idle pool.",
        "",
    ]
    report = "\n".join(lines)
    print(report)
    if args.record:
        with open(REPO / "bench" / "RESULTS.md", "a", encoding="utf-8") as handle:
            handle.write("\n" + report)
    return 1 if results.errors or results.torn else 0


if __name__ == "__main__":
    raise SystemExit(main())
