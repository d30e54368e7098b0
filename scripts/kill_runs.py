"""Kill the nightly run with SIGKILL at random points, rerun, and check that nothing was lost or half-published.

    .venv/bin/python scripts/kill_runs.py                 # 20 kills in 4 rounds, JSON summary on stdout
    .venv/bin/python scripts/kill_runs.py --kills 6 --rounds 1 --workdir /tmp/kills

1. A small demo lake is generated once (``pristine``) with deliveries for D-1 and D, and D-1 is run and
   published, so a live pool exists from the start. A copy runs ``citybrain run --start D --end D``
   uninterrupted: the **baseline** pool, and the stage timings.
2. Each round starts from another copy of the pristine lake. Its runs are started as the real CLI in a
   session of their own and killed (``killpg``, SIGKILL: the run, its dbt processes, everything) at a point
   picked per kill: a progress line of the run (``[  t s] ingest …``, ``dbt …``, ``checks …``) plus a random
   delay, or, for publication, the moment a ``.partial`` version file or the intent record appears. The stage
   a kill hit is the step that was executing (the step after the last finished one, in the baseline's order;
   publication when its files were there). The next run is the rerun after the kill; after the round's
   last kill a rerun must finish with exit status 0.
3. Throughout each round, four reader processes poll the live tier files: plain DuckDB read-only on each
   tier, the access layer (``citybrain.access.connect(local_operator=True)``: both tiers) and the CLI
   (``citybrain query --local-operator --tier open``, one process per query). Every read must see
   one version whose tables and row counts are what its ``meta.publication`` says.
4. The final pool of each round must equal the baseline pool: per table, the row count and an
   order-independent hash of every row (sum of DuckDB ``hash`` of the row, doubles rounded to 6 decimals),
   over every ``pool`` table of each tier except the quality scorecards (they describe the runs: delivery
   times, lateness, polls, and a killed night has more runs), plus ``meta.deliveries`` by content (feed,
   partition, file hash, row counts; database/API polls that brought no rows are left out, as every rerun
   polls again). ``meta.publication`` and ``meta.check_results`` are per run (version, run id,
   timestamps) and are not compared.

The summary (JSON) lists every kill with its stage, what it left behind (WAL, ``.partial`` files, intent
record, a Dagster run left STARTED), the per-round comparison and the readers' counts. Exit status 1 if any
round differs from the baseline, a rerun failed, or a reader saw an error or an inconsistent read.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from demo_city.hotline_api import served_env  # noqa: E402  (a demo lake: `citybrain run` serves no demo API)

BIN = Path(sys.executable).parent
TIERS = ("open", "conditional")

# Stage of each step of city_nightly (progress-line names) and the run's step order (from the baseline).
STAGES = {
    "ingest": "ingestion",
    "step": "ingestion",
    "checks": "checks",
    "dbt": "dbt",
    "publish": "publication",
}
# A kill target: (stage aimed at, progress-line trigger or "file", delay range in seconds after it).
TARGETS = [
    ("ingestion", "ingest ", (0.0, 2.0)),
    ("checks", "step     reference_divisions", (0.0, 6.0)),
    ("dbt", "checks   raw_freshness", (0.5, 20.0)),
    ("dbt", "dbt      citybrain_dbt_models", (0.5, 9.0)),
    ("checks", "dbt      citybrain_dbt_daily_models", (0.0, 4.5)),
    ("dbt", "checks   gx_citybrain_dbt_daily_models", (0.5, 6.0)),
    ("publication", "file", (0.0, 0.25)),
    ("publication", "intent", (0.0, 0.0)),
]

READER = textwrap.dedent(
    """
    import json, os, sys, time
    from pathlib import Path
    import duckdb
    mode, pool, stop = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    reads, errors, inconsistent, versions = 0, [], [], set()

    def check(version, table_rows, counts, tables):
        if set(table_rows) != set(tables):
            inconsistent.append(f"{version}: tables {sorted(tables)} != meta {sorted(table_rows)}")
        for table, rows in counts.items():
            if rows != table_rows.get(table):
                inconsistent.append(f"{version}: {table} has {rows} rows, meta says {table_rows.get(table)}")

    while not stop.exists():
        try:
            if mode in ("open", "conditional"):
                path = pool / mode / f"citybrain_{mode}.duckdb"
                if not path.exists():
                    time.sleep(0.2)
                    continue
                with duckdb.connect(str(path), read_only=True) as con:
                    version, table_rows = con.execute("SELECT version, table_rows FROM meta.publication").fetchone()
                    table_rows = json.loads(table_rows)
                    tables = [f"pool.{t}" for (t,) in con.execute(
                        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'pool'").fetchall()]
                    counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
                check(version, table_rows, counts, tables)
                versions.add(version)
            elif mode == "cli":  # `citybrain query` as an analyst would run it, a process per query
                import csv, subprocess
                if not (pool / "open" / "citybrain_open.duckdb").exists():
                    time.sleep(0.2)
                    continue
                out = stop.with_name(stop.name + ".cli.csv")
                sql = ("SELECT p.version, p.table_rows, (SELECT count(*) FROM pool.dim_district) AS dim_district, "
                       "(SELECT count(*) FROM pool.fct_presence_hourly) AS fct_presence_hourly FROM meta.publication p")
                done = subprocess.run([os.path.join(os.path.dirname(sys.executable), "citybrain"), "query",
                                       "--local-operator", "--tier", "open", sql, "--out", str(out)],
                                      capture_output=True, text=True)
                if done.returncode:
                    raise RuntimeError(f"citybrain query exit {done.returncode}: {done.stderr.strip()[-300:]}")
                with open(out, encoding="utf-8") as handle:
                    (row,) = list(csv.DictReader(handle))
                table_rows = json.loads(row["table_rows"])
                counts = {f"pool.{t}": int(row[t]) for t in ("dim_district", "fct_presence_hourly")}
                check(row["version"], table_rows, counts, list(table_rows))
                versions.add(row["version"])
            else:
                import citybrain.access as access
                if not all((pool / t / f"citybrain_{t}.duckdb").exists() for t in ("open", "conditional")):
                    time.sleep(0.2)
                    continue
                with access.connect(local_operator=True, directory=pool) as session:
                    meta = session.query("SELECT tier, version, table_rows FROM meta.publication").to_pylist()
                    seen = {m["version"] for m in meta}
                    if len(seen) != 1:
                        inconsistent.append(f"tiers at different versions {sorted(seen)}")
                    expected = {}
                    for m in meta:
                        expected.update(json.loads(m["table_rows"]))
                    counts = {t: session.query(f"SELECT count(*) AS n FROM {t}").to_pylist()[0]["n"] for t in expected}
                    check(next(iter(seen)), expected, counts, list(expected))
                    versions.update(seen)
            reads += 1
        except Exception as error:  # noqa: BLE001 - the reader reports every failure
            errors.append(f"{time.time():.3f} {error!r}")
        time.sleep(0.02)
    print(json.dumps({"mode": mode, "reads": reads, "errors": errors[:10], "error_count": len(errors),
                      "inconsistent": inconsistent[:10], "inconsistent_count": len(inconsistent),
                      "versions": sorted(versions)}))
    """
)


HOTLINE_ENV: dict[str, str] = {}  # the demo hotline API serving the pristine lake's store (main)


def lake_env(home: Path) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("CITYBRAIN_") and k not in ("DAGSTER_HOME",)
    }
    env.update(
        CITYBRAIN_HOME=str(home),
        DAGSTER_HOME=str(home / "dagster_home"),
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        PYTHONUNBUFFERED="1",
        CITYBRAIN_AUDIT_DIR=str(home / "audit"),
        **HOTLINE_ENV,
    )
    return env


def make_pristine(home: Path, counties: list[str], residents: int, day: str) -> None:
    """A demo lake with deliveries for the day before ``day`` and ``day``, the day before already run and
    published: readers have a live pool to read from the first second of every round."""
    before = (date.fromisoformat(day) - timedelta(days=1)).isoformat()
    subprocess.run(
        [str(BIN / "citybrain"), "demo-data", "--counties", *counties, "--residents", str(residents),
         "--days", "2", "--end-date", day],
        cwd=REPO, env=lake_env(home), check=True, capture_output=True, text=True,
    )  # fmt: skip
    with served_env(home / "demo" / "hotline_store") as hotline:
        done = subprocess.run(
            [str(BIN / "citybrain"), "run", "--start", before, "--end", before],
            cwd=REPO, env={**lake_env(home), **hotline}, capture_output=True, text=True,
        )  # fmt: skip
    if done.returncode != 0 or not (home / "pool" / "open" / "citybrain_open.duckdb").exists():
        raise SystemExit(f"the pristine lake's first night ({before}) failed: {done.stdout[-2000:]}")


def copy_lake(pristine: Path, home: Path) -> Path:
    shutil.rmtree(home, ignore_errors=True)
    shutil.copytree(pristine, home, symlinks=True)
    return home


def start_run(home: Path, day: str, log) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "citybrain"), "run", "--start", day, "--end", day],
        cwd=REPO, env=lake_env(home), stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1,
        start_new_session=True,
    )  # fmt: skip


def run_to_end(home: Path, day: str, log) -> tuple[int, list[tuple[float, str]], float]:
    started = time.monotonic()
    process = start_run(home, day, log)
    lines = [(time.monotonic() - started, line.rstrip()) for line in process.stdout]
    return process.wait(), lines, time.monotonic() - started


def _step_of(line: str) -> str | None:
    """'  [   12.3 s] dbt      citybrain_dbt_models  …' → 'dbt citybrain_dbt_models'."""
    if "] " not in line or not line.lstrip().startswith("["):
        return None
    words = line.split("] ", 1)[1].split()
    if words and words[0] == "ingest":
        return "ingest"
    return " ".join(words[:2]) if len(words) >= 2 else None


def publication_files(pool: Path, earlier: frozenset = frozenset()) -> dict[str, bool]:
    """Is a publication writing (a ``.partial`` version file) or switching (the intent record)? Files in
    ``earlier`` were left by the previous kill and are not this run's publication (recovery removes them)."""
    return {
        "partial": any(p not in earlier for p in pool.glob("*/versions/.*.partial*")),
        "intent": _intent_written(pool) not in (None, *earlier),
    }


def _intent_written(pool: Path) -> int | None:
    """When the intent record was written (ns), None without one: a new record is a new publication."""
    try:
        return (pool / ".publishing.json").stat().st_mtime_ns
    except FileNotFoundError:
        return None


def _existing_publication_files(pool: Path) -> frozenset:
    return frozenset([*pool.glob("*/versions/.*.partial*"), _intent_written(pool)])


def kill_once(home: Path, day: str, target, order: list[str], rng: random.Random, log) -> dict:
    aimed, trigger, (low, high) = target
    pool = home / "pool"
    delay = rng.uniform(low, high)
    earlier = _existing_publication_files(pool)
    started = time.monotonic()
    process = start_run(home, day, log)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    last_step, fired_at, files, seen = None, None, {}, []
    while process.poll() is None:
        while not lines.empty():
            line = lines.get()
            seen.append(f"{time.monotonic() - started:.1f} {line.strip()[:70]}")
            last_step = _step_of(line) or last_step
            if fired_at is None and trigger not in ("file", "intent") and trigger in line:
                fired_at = time.monotonic()
        if fired_at is None and trigger in ("file", "intent"):
            state = publication_files(pool, earlier)
            if state["intent"] or (trigger == "file" and state["partial"]):
                fired_at = time.monotonic()
        if fired_at is not None and time.monotonic() >= fired_at + delay:
            files = publication_files(pool, earlier)
            os.killpg(process.pid, signal.SIGKILL)
            break
        time.sleep(0.002 if trigger in ("file", "intent") else 0.02)
    process.wait()
    killed = process.returncode == -signal.SIGKILL
    elapsed = time.monotonic() - started
    time.sleep(0.1)
    while not lines.empty():
        last_step = _step_of(lines.get()) or last_step
    if not killed or fired_at is None:
        return {
            "aimed": aimed,
            "stage": "completed before the kill",
            "killed": False,
            "at_s": round(elapsed, 2),
        }
    if files.get("partial") or files.get("intent"):
        stage, step = (
            "publication",
            "pool_publication " + ("switching" if files["intent"] else "writing versions"),
        )
    else:
        following = order[order.index(last_step) + 1] if last_step in order else order[0]
        if last_step == "ingest" and "ingest" in order:
            following = "ingest"  # more feeds to load
        stage, step = STAGES.get(following.split()[0], following), following
    return {
        "aimed": aimed,
        "stage": stage,
        "step": step,
        "killed": True,
        "at_s": round(elapsed, 2),
        "trigger_at_s": round(fired_at - started, 2),
        "last_lines": seen[-2:],
        "left_behind": leftovers(home),
    }


def leftovers(home: Path) -> dict:
    pool = home / "pool"
    started = 0
    runs_db = home / "dagster_home" / "history" / "runs.db"
    if runs_db.exists():
        import sqlite3

        with sqlite3.connect(runs_db) as con:
            (started,) = con.execute("SELECT count(*) FROM runs WHERE status = 'STARTED'").fetchone()
    return {
        "warehouse_wal": (home / "warehouse.duckdb.wal").exists(),
        "partial_versions": len(list(pool.glob("*/versions/.*.partial*"))),
        "intent": (pool / ".publishing.json").exists(),
        "dagster_runs_started": started,
    }


# Pool tables that describe the runs themselves (delivery times, lateness, how many polls a feed had):
# a killed night has more runs than an uninterrupted one by construction, so these differ legitimately.
RUN_DESCRIBING_TABLES = "quality_scorecard_%"


def pool_hash(pool: Path) -> dict[str, list]:
    """tier.schema.table → [rows, order-independent hash of every row]; doubles rounded to 6 decimals
    (sums of doubles differ in the last bits with the order rows arrive in)."""
    hashes = {}
    for tier in TIERS:
        with duckdb.connect(str(pool / tier / f"citybrain_{tier}.duckdb"), read_only=True) as con:
            tables = con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'pool' AND table_name NOT LIKE ? "
                "ORDER BY 1",
                [RUN_DESCRIBING_TABLES],
            ).fetchall()
            for (table,) in tables:
                columns = ", ".join(
                    f'round("{name}", 6)' if kind == "DOUBLE" else f'"{name}"'
                    for name, kind in con.execute(
                        "SELECT column_name, data_type FROM duckdb_columns() WHERE schema_name = 'pool' "
                        "AND table_name = ? ORDER BY column_index",
                        [table],
                    ).fetchall()
                )
                hashes[f"{tier}.pool.{table}"] = list(
                    con.execute(
                        f'SELECT count(*), sum(hash(t))::VARCHAR FROM (SELECT {columns} FROM pool."{table}") AS t'
                    ).fetchone()
                )
            # What was delivered, by content: database and API polls that brought nothing new are left out
            # (every rerun polls again), and their source names hold the lake's path and the API's port.
            hashes[f"{tier}.meta.deliveries"] = list(
                con.execute(
                    "SELECT count(*), sum(hash(t))::VARCHAR FROM (SELECT feed_id, provider, partition_key, "
                    "file_sha256, rows_received, rows_loaded, rows_quarantined FROM meta.deliveries "
                    "WHERE rows_received > 0) AS t"
                ).fetchone()
            )
    return hashes


def column_diff(pool_a: Path, pool_b: Path, key: str) -> list[str]:
    """Which columns of a differing table differ (for the report)."""
    tier, schema, table = key.split(".")
    out = []
    for column in _columns(pool_a, tier, schema, table):
        sums = [
            _one(p, tier, f'SELECT sum(hash("{column}"))::VARCHAR FROM {schema}."{table}"')
            for p in (pool_a, pool_b)
        ]
        if sums[0] != sums[1]:
            out.append(column)
    return out


def _columns(pool, tier, schema, table):
    with duckdb.connect(str(pool / tier / f"citybrain_{tier}.duckdb"), read_only=True) as con:
        return [
            c
            for (c,) in con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE schema_name = ? AND table_name = ?",
                [schema, table],
            ).fetchall()
        ]


def _one(pool, tier, sql):
    with duckdb.connect(str(pool / tier / f"citybrain_{tier}.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchone()[0]


def start_readers(home: Path, stop: Path) -> list[subprocess.Popen]:
    env = {**lake_env(home), "CITYBRAIN_AUDIT_DIR": str(home.parent / f"{home.name}_reader_audit")}
    return [
        subprocess.Popen(
            [sys.executable, "-c", READER, mode, str(home / "pool"), str(stop)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for mode in ("open", "conditional", "access", "cli")
    ]


def plan_kills(kills: int, rounds: int, rng: random.Random) -> list[list[tuple]]:
    """Kills per round; each round's first kill hits ingestion of the fresh lake, the others cycle through the
    targets (shuffled), so every stage is hit about equally often."""
    per_round = [kills // rounds + (1 if i < kills % rounds else 0) for i in range(rounds)]
    others = []
    while len(others) < kills:
        batch = TARGETS[1:]
        rng.shuffle(batch)
        others.extend(batch)
    plan, used = [], 0
    for n in per_round:
        round_plan = [TARGETS[0]] + others[used : used + n - 1] if n else []
        used += max(n - 1, 0)
        plan.append(round_plan)
    return plan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--counties", nargs="+", default=["330106"])
    parser.add_argument("--residents", type=int, default=1500)
    parser.add_argument("--day", default="2026-10-05")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--out", type=Path, help="also write the JSON summary here")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="citybrain-kills-"))
    workdir.mkdir(parents=True, exist_ok=True)
    log = open(workdir / "runs.stderr.log", "a", encoding="utf-8")  # noqa: SIM115 - open for the whole script
    began = time.monotonic()

    def say(message: str) -> None:
        print(f"[{time.monotonic() - began:7.1f} s] {message}", file=sys.stderr, flush=True)

    pristine = workdir / "pristine"
    if not (pristine / "landing").exists():
        make_pristine(pristine, args.counties, args.residents, args.day)
    # Every round's lake is a copy of the pristine one, with the same hotline ticket store: one API for all.
    hotline = contextlib.ExitStack()
    HOTLINE_ENV.update(hotline.enter_context(served_env(pristine / "demo" / "hotline_store")))
    baseline = copy_lake(pristine, workdir / "baseline")
    status, lines, seconds = run_to_end(baseline, args.day, log)
    if status != 0:
        raise SystemExit(f"the uninterrupted baseline run failed (exit {status}); see {workdir}")
    order, timings = [], {}
    for _at, line in lines:
        step = _step_of(line)
        if step and (not order or order[-1] != step):
            order.append(step)
            timings[step] = round(float(line.split("[", 1)[1].split("s]")[0]), 1)
    expected = pool_hash(baseline / "pool")
    say(f"baseline run: {seconds:.0f} s, {len(expected)} tables, steps {timings}")

    kills, rounds = [], []
    for number, round_plan in enumerate(plan_kills(args.kills, args.rounds, rng), 1):
        home = copy_lake(pristine, workdir / f"round{number}")
        stop = workdir / f"round{number}.stop"
        stop.unlink(missing_ok=True)
        readers = start_readers(home, stop)
        for target in round_plan:
            kill = kill_once(home, args.day, target, order, rng, log)
            kill["round"] = number
            kills.append(kill)
            say(f"round {number} kill {len(kills)}: aimed at {target[0]}, hit {kill.get('step') or kill['stage']} "
                f"after {kill['at_s']} s; left {kill.get('left_behind')}")  # fmt: skip
        status, lines, seconds = run_to_end(home, args.day, log)
        time.sleep(0.5)
        stop.touch()
        reports = [json.loads(r.communicate(timeout=120)[0]) for r in readers]
        final = pool_hash(home / "pool") if status == 0 else {}
        differing = sorted(k for k in set(expected) | set(final) if expected.get(k) != final.get(k))
        round_report = {
            "round": number,
            "kills": len(round_plan),
            "rerun_exit": status,
            "rerun_s": round(seconds, 1),
            "rerun_tail": [line for _, line in lines[-3:]] if status else [],
            "identical_to_baseline": status == 0 and not differing,
            "differing_tables": {
                k: column_diff(baseline / "pool", home / "pool", k)
                if k in expected and k in final
                else "missing"
                for k in differing
            },
            "leftovers_after_rerun": leftovers(home),
            "readers": reports,
        }
        rounds.append(round_report)
        say(f"round {number}: rerun exit {status}, identical {round_report['identical_to_baseline']}, "
            f"reads {[r['reads'] for r in reports]}, errors {[r['error_count'] for r in reports]}, "
            f"inconsistent {[r['inconsistent_count'] for r in reports]}")  # fmt: skip
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)

    hit = [k for k in kills if k["killed"]]
    summary = {
        "seed": args.seed,
        "lake": {"counties": args.counties, "residents": args.residents, "day": args.day},
        "baseline_run_s": timings,
        "kills": len(hit),
        "kills_per_stage": dict(Counter(k["stage"] for k in hit)),
        "kills_per_step": dict(Counter(k["step"] for k in hit)),
        "runs_completed_before_kill": len(kills) - len(hit),
        "rounds": len(rounds),
        "rounds_identical_to_baseline": sum(r["identical_to_baseline"] for r in rounds),
        "reader_reads": sum(r["reads"] for rnd in rounds for r in rnd["readers"]),
        "reader_errors": sum(r["error_count"] for rnd in rounds for r in rnd["readers"]),
        "reader_inconsistent": sum(r["inconsistent_count"] for rnd in rounds for r in rnd["readers"]),
        "left_behind_by_kills": {
            "warehouse_wal": sum(k["left_behind"]["warehouse_wal"] for k in hit),
            "partial_versions": sum(k["left_behind"]["partial_versions"] > 0 for k in hit),
            "intent": sum(k["left_behind"]["intent"] for k in hit),
            "dagster_run_left_started": sum(k["left_behind"]["dagster_runs_started"] > 0 for k in hit),
        },
        "seconds": round(time.monotonic() - began),
        "kill_log": kills,
        "round_log": rounds,
    }
    ok = (
        summary["rounds_identical_to_baseline"] == len(rounds)
        and summary["reader_errors"] == 0
        and summary["reader_inconsistent"] == 0
    )
    summary["ok"] = ok
    text = json.dumps(summary, indent=2, ensure_ascii=False)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    hotline.close()
    if not args.keep and not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
