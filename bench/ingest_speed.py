"""Ingestion against its floor: our ingestion of one delivery vs bare DuckDB loading the same bytes as text.

    python bench/ingest_speed.py --landing <a demo lake's landing dir> [--baseline <checkout>] [--no-results]

Make a landing zone with ``citybrain demo-data --residents 1000000 --days 1`` (CITYBRAIN_HOME=<dir>).
Each measurement runs in a child process of its own, so its peak RSS (the kernel's, from wait4) is its
own, on the same machine in the same run:

- ``registry``: ``ingest_files`` of the household registry CSV (GB18030) into a fresh warehouse; its
  floor: the file decoded by Python's codec into a UTF-8 temporary file and loaded by DuckDB's
  ``read_csv(all_varchar = true)`` into a table (DuckDB's own GB18030 reader, the ``encodings``
  extension, is not shipped with the wheel and measured 7x slower than this in issue 20).
- ``insurance``: ``ingest_sql`` of the social insurance enrolment table (SQLite) into a fresh
  warehouse; its floor: the rows fetched with the DBAPI ``fetchmany`` into Arrow and loaded into a
  DuckDB table (DuckDB's SQLite scanner is an extension the wheel does not ship).

With ``--baseline <dir>`` (e.g. ``git archive <commit> | tar -x -C <dir>``) the same deliveries are also
ingested by that checkout's code, for a before/after in the same run. Prints the seconds, the ratio
ours / floor and the peak RSS of each; writes
bench/results/ingest_speed.json unless ``--no-results``. No target is asserted: this is a measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS_JSON = REPO / "bench" / "results" / "ingest_speed.json"
REGISTRY_FEED = "household_registry"
INSURANCE_FEED = "si_insured"


def _registry_file(landing: Path) -> Path:
    return sorted((landing / "public_security").glob("household_registry_*.csv"))[-1]


def _child(kind: str, landing: Path, work: Path) -> dict:
    """One measurement, in this (child) process; returns what it loaded and how long it took."""
    import duckdb

    from citybrain.catalog import load_catalog
    from citybrain.ingest.pipeline import ingest_files, ingest_sql

    catalog = load_catalog()
    warehouse = work / "warehouse.duckdb"
    started = time.monotonic()
    if kind == "registry":
        result = ingest_files(
            catalog.feed(REGISTRY_FEED), landing, warehouse, None, "bench"
        ).raise_for_problems()
        rows = (result.rows_loaded, result.rows_quarantined)
    elif kind == "insurance":
        url = f"sqlite:///{landing / 'hrss' / 'social_insurance.sqlite'}"
        result = ingest_sql(catalog.feed(INSURANCE_FEED), url, warehouse, "bench").raise_for_problems()
        rows = (result.rows_loaded, result.rows_quarantined)
    elif kind == "registry_floor":
        path = _registry_file(landing)
        encoding = catalog.feed(REGISTRY_FEED).delivery.encoding
        utf8 = work / "registry_utf8.csv"
        with (
            open(path, encoding=encoding, errors="replace", newline="") as src,
            open(utf8, "w", encoding="utf-8", newline="") as dst,
        ):
            while block := src.read(16 << 20):
                dst.write(block)
        con = duckdb.connect(str(warehouse))
        con.execute(f"CREATE TABLE registry AS SELECT * FROM read_csv('{utf8}', all_varchar = true)")
        rows = (con.execute("SELECT count(*) FROM registry").fetchone()[0], 0)
        con.close()
    elif kind == "insurance_floor":
        import sqlite3

        import pyarrow as pa

        feed = catalog.feed(INSURANCE_FEED)
        columns = feed.column_names
        source = sqlite3.connect(landing / "hrss" / "social_insurance.sqlite")
        cur = source.execute(
            f"SELECT {', '.join(columns)} FROM {feed.delivery.table} ORDER BY {feed.delivery.cursor}"
        )
        con = duckdb.connect(str(warehouse))
        con.execute(f"CREATE TABLE insured ({', '.join(f'{c} VARCHAR' for c in columns)})")
        n = 0
        while chunk := cur.fetchmany(100_000):
            table = pa.table(
                {c: pa.array([r[i] for r in chunk]).cast(pa.string()) for i, c in enumerate(columns)}
            )
            con.register("chunk", table)
            con.execute("INSERT INTO insured SELECT * FROM chunk")
            con.unregister("chunk")
            n += len(chunk)
        rows = (n, 0)
        con.close()
    else:
        raise SystemExit(f"unknown measurement {kind}")
    return {
        "seconds": round(time.monotonic() - started, 2),
        "rows_loaded": rows[0],
        "rows_quarantined": rows[1],
    }


def measure(kind: str, landing: Path, code: Path = REPO, label: str | None = None) -> dict:
    """Run one measurement in a child process with the ingestion code of checkout ``code``; add its
    peak RSS."""
    with tempfile.TemporaryDirectory(prefix=f"ingest_speed_{kind}_") as work:
        env = {**os.environ, "PYTHONPATH": str(code), "CITYBRAIN_DUCKDB_TEMP_DIR": str(Path(work) / "tmp")}
        process = subprocess.Popen(
            [sys.executable, __file__, "--child", kind, "--landing", str(landing), "--work", work],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        output = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{kind} failed (exit {os.waitstatus_to_exitcode(status)})")
    result = json.loads(output.strip().splitlines()[-1])
    result["peak_rss_mb"] = round(usage.ru_maxrss / 1024)
    print(f"  {label or kind:16} {result['seconds']:8.2f} s  peak {result['peak_rss_mb']:6} MB  rows {result['rows_loaded']:,}"
          f" (+{result['rows_quarantined']:,} quarantined)", flush=True)  # fmt: skip
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--landing", type=Path, required=True)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--only", choices=["registry", "insurance"], help="measure one delivery only")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="also measure the ingestion of this checkout (e.g. `git archive` of main)",
    )
    parser.add_argument(
        "--no-results", action="store_true", help="do not write bench/results/ingest_speed.json"
    )
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.landing.resolve(), args.work)))
        return
    landing = args.landing.resolve()
    registry = _registry_file(landing)
    print(f"ingest_speed: {registry.name} {registry.stat().st_size / 2**20:.1f} MB; {os.cpu_count()} cores")
    out: dict = {
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "registry_bytes": registry.stat().st_size,
    }
    for name in ("registry", "insurance"):
        if args.only and args.only != name:
            continue
        ours, floor = measure(name, landing), measure(f"{name}_floor", landing)
        out[name] = {"ours": ours, "floor": floor, "ratio": round(ours["seconds"] / floor["seconds"], 2)}
        if args.baseline:
            before = measure(name, landing, args.baseline.resolve(), f"{name} (baseline)")
            out[name]["baseline"] = before
            out[name]["baseline_ratio"] = round(before["seconds"] / floor["seconds"], 2)
            print(f"  {name}: baseline / floor = {out[name]['baseline_ratio']:.2f}x", flush=True)
        print(f"  {name}: ours / floor = {out[name]['ratio']:.2f}x", flush=True)
    if not args.no_results:
        RESULTS_JSON.parent.mkdir(parents=True, exist_ok=True)
        RESULTS_JSON.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
