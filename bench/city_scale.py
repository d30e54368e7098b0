"""The nightly at city scale: time, memory and growth, as ratios against a floor measured in the same run.

    python bench/city_scale.py [--residents 10000000] [--days 30] [--compare-residents 1000000]
                               [--memory-limit 2GB] [--work bench/work/city_scale] [--no-readme] [--no-record]

The defaults are the issue's scale (10 million residents, 30 days, three operators): the city
generates in about 6 minutes and 4.2 GB (see "Generation" in bench/RESULTS.md), the nightly runs take
many hours on 2 cores; try ``--residents 200000 --days 7`` (about 10 minutes) first.

What one invocation does, in a lake of its own (``--work``/r<residents>-d<days>, never ``data/``):

1. ``citybrain demo-data`` as of day 1, later as of day N-1 and as of day N (deliveries arrive night
   by night; the last one is timed, with the peak memory of its process tree).
2. ``citybrain run`` for day 1 alone, then days 2..N-1 as one backfill run, then day N alone: day 1
   and day N are each one nightly partition end to end (ingest, reference, dbt's three steps with
   their tests, the GX checks, publication, the resource catalog), each in a child process whose
   whole process tree (dbt runs in subprocesses) is polled for resident memory (the sum of the
   processes' RSS, the target's measure, and of their PSS, which counts a page the dbt zygote shares
   with the dbt step it forked once instead of twice). Day N is *the*
   nightly partition: N-1 days of history are loaded when it runs, as on a real night.
3. The floor of day 1 (right after its run, before later deliveries replace its files) and of day N:
   one bare DuckDB process on a copy of the warehouse as that night left it, with the same memory
   limit, in two parts timed apart.
   *Ingestion floor*: the deliveries the night's ``raw.ingestion_log`` lists, read into all-text tables
   by DuckDB's own readers (CSV, JSON, Parquet, ``excel``; the ``sqlite``/``postgres``/``mysql``
   scanners from the cursor the night started at; the API's pages fetched again), files found in the
   landing zone by SHA-256; extensions from their PyPI packages (citybrain/duckdb_extensions.py, never
   downloaded); details in bench/ingestion_floor.py.
   *Transformation floor* (the earlier tables' whole floor): ``dbt compile`` of the project for the
   night's vars, then the compiled SQL of every model, in DAG order, with the project's UDFs
   registered: views and tables as ``CREATE OR REPLACE``, incremental models as delete+insert of the
   partition's rows (what dbt's delete+insert strategy does, without its temp-relation and schema
   checks; the models built load by load, tag ``load_incremental``, redo the night's loads, taken out
   of the copy first),
   snapshots as their SELECT only (the SCD2 merge is left out).
   Not in the floor: the hostile-input rules (quarantine), dbt tests, GX, publication, Dagster and dbt
   start-up. pipeline / floor uses the sum; ingest stage / ingestion floor and dbt steps /
   transformation floor say where the rest goes.
4. With ``--compare-residents M``: a second lake of M residents and 1 day, its day-1 partition run the
   same way; the growth ratio is day-1 time at ``--residents`` over day-1 time at M.
5. Definitions load time (bench/definitions_load.py, 3 repetitions).

Stage times come from the run's Dagster event log (start and end of every step; the in-process
executor runs steps one after another) and dbt's own time from each dbt step's run_results.json
(``elapsed_time``: executing the nodes, after dbt started up and parsed the project). Results go to
bench/results/city_scale.json and a table appended to bench/RESULTS.md; the README's Benchmarks
section shows the latest table (between its city_scale markers) unless ``--no-readme``; ``--no-record``
(a validation run) writes neither, only the JSON into the lake.
"""

from __future__ import annotations

import argparse
import contextlib
import graphlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ingestion_floor import night_entries, plan_loads, read_cursors, summary  # noqa: E402  (bench/, beside this file)

from demo_city.hotline_api import served_env  # noqa: E402  (a demo lake: `citybrain run` serves no demo API)

BIN = Path(sys.executable).parent
DBT_DIR = REPO / "dbt_project"
RESULTS_JSON = REPO / "bench" / "results" / "city_scale.json"
RESULTS_MD = REPO / "bench" / "RESULTS.md"
README = REPO / "README.md"
README_START = "<!-- city_scale:start -->"
README_END = "<!-- city_scale:end -->"
PAGE = os.sysconf("SC_PAGE_SIZE")

TARGETS = {  # issue 20 (the floor now counts ingestion); day N / day 1 and definitions load from issue 7
    "later_night_over_floor_at_1m": 1.5,
    "later_night_over_floor_at_10m": 1.3,
    "first_night_over_floor": 2.0,
    "gx_share": 0.10,
    "peak_memory_gb_at_10m": 4.0,
    "day_n_over_day_1": 1.2,
    "definitions_load_seconds": 5.0,
}


# --- child processes with the peak memory of their process tree -------------------------------


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    return children


def tree_memory_bytes(pid: int) -> tuple[int, int]:
    """Memory of a process and all its descendants: resident (pages shared between them count once per
    process: a dbt step forked from the run's dbt zygote counts the zygote's pages twice) and proportional
    (the kernel's PSS: a page shared by n processes counts 1/n in each, so the tree's pages count once)."""
    children = _children_map()
    rss = pss = 0
    todo = [pid]
    while todo:
        current = todo.pop()
        todo += children.get(current, [])
        with contextlib.suppress(OSError, IndexError, ValueError):  # a process that just ended
            rss += int(Path(f"/proc/{current}/statm").read_text().split()[1]) * PAGE
            rollup = Path(f"/proc/{current}/smaps_rollup").read_text()
            pss += int(re.search(r"^Pss:\s+(\d+) kB", rollup, re.MULTILINE)[1]) * 1024
    return rss, pss


def measured(
    name: str, command: list[str], env: dict, logs: Path, interval: float = 0.25
) -> tuple[dict, str]:
    """Run a child to completion; its wall time, the peak RSS and PSS of its process tree (polled) and the
    largest peak RSS of any one process in it (the kernel's, from wait4). Output goes to logs/<name>.log."""
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{name}.log"
    shown = [Path(command[0]).name, *(c.splitlines()[0] + (" ..." if "\n" in c else "") for c in command[1:])]
    print(f"  {name}: {' '.join(shown)}", flush=True)
    started, started_wall = time.monotonic(), time.time()
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen(command, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        peak = peak_pss = 0
        peak_at = peak_pss_at = started_wall
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            rss, pss = tree_memory_bytes(process.pid)
            if rss > peak:
                peak, peak_at = rss, time.time()
            if pss > peak_pss:
                peak_pss, peak_pss_at = pss, time.time()
            time.sleep(interval)
    seconds = time.monotonic() - started
    output = log_path.read_text(encoding="utf-8", errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(
            f"{name} failed (exit {os.waitstatus_to_exitcode(status)}), see {log_path}:\n{output[-3000:]}"
        )
    result = {
        "seconds": round(seconds, 1),
        "peak_tree_rss_mb": round(peak / 2**20),
        "peak_tree_pss_mb": round(peak_pss / 2**20),
        "peak_tree_rss_at": peak_at,  # wall time, placed in a step by run_partition
        "peak_tree_pss_at": peak_pss_at,
        "peak_process_rss_mb": round(usage.ru_maxrss / 1024),
        "log": str(log_path),
        "wall_start": started_wall,
        "wall_end": started_wall + seconds,
    }
    print(
        f"    {seconds:8.1f} s, peak {result['peak_tree_rss_mb']} MB (process tree; PSS "
        f"{result['peak_tree_pss_mb']} MB)",
        flush=True,
    )
    return result, output


# --- one nightly partition ------------------------------------------------------------------------


def run_partition(name: str, home: Path, env: dict, start: date, end: date) -> dict:
    """`citybrain run --start --end` as a measured child; then its steps from the Dagster event log."""
    dbt_dirs_before = _dbt_target_dirs()
    command = [str(BIN / "citybrain"), "run", "--start", start.isoformat(), "--end", end.isoformat()]
    with served_env(home / "demo" / "hotline_store") as hotline:  # `citybrain run` serves no demo API
        result, output = measured(name, command, {**env, **hotline}, home / "logs")
    match = re.search(r"^run ([0-9a-f-]{36}): (SUCCESS|FAILURE)", output, re.MULTILINE)
    if not match or match[2] != "SUCCESS":
        sys.exit(f"{name}: the run did not succeed, see {result['log']}:\n{output[-3000:]}")
    result.update(_run_steps(home, match[1]))
    for measure in ("rss", "pss"):  # which step ran when the process tree's memory peaked
        at = result[f"peak_tree_{measure}_at"]
        result[f"peak_tree_{measure}_step"] = next(
            (key for key, step in result["steps"].items() if step["start"] <= at <= step["end"]),
            "between steps",
        )
    result["dbt"] = _dbt_own_time(result["steps"], sorted(set(_dbt_target_dirs()) - set(dbt_dirs_before)))
    stages = result["stages"]
    run_seconds = result["run_seconds"]
    dbt_step_seconds = stages.get("dbt", 0.0)
    dbt_own = result["dbt"]["dbt_elapsed_seconds"]
    # Start-up: the process before the run starts (imports, definitions, instance) and after it ends
    # (summaries), plus every dbt step's time outside dbt's own node execution (dbt start-up and
    # parsing, dagster-dbt's event handling, row counts, the classification check's compile).
    process_overhead = max(0.0, result["seconds"] - run_seconds)
    dbt_overhead = max(0.0, dbt_step_seconds - dbt_own)
    result["startup_seconds"] = {
        "process_outside_run": round(process_overhead, 1),
        "process_before_run_start": round(result.pop("run_start") - result["wall_start"], 1),
        "process_after_run_end": round(result["wall_end"] - result.pop("run_end"), 1),
        "dbt_steps_outside_dbt_execution": round(dbt_overhead, 1),
    }
    result["shares"] = {
        "gx": round(stages.get("checks", 0.0) / result["seconds"], 3),
        "startup": round((process_overhead + dbt_overhead) / result["seconds"], 3),
        **{f"stage_{k}": round(v / result["seconds"], 3) for k, v in stages.items()},
    }
    return result


def _stage(step_key: str) -> str:
    if step_key.startswith("gx_"):
        return "checks"
    if step_key.startswith("citybrain_dbt"):
        return "dbt"
    if step_key.startswith("pool_publication"):
        return "publish"
    if step_key.startswith("raw"):
        return "ingest"
    return "other"  # reference tables, resource catalog, freshness checks


def _run_steps(home: Path, run_id: str) -> dict:
    os.environ["DAGSTER_HOME"] = str(home / "dagster_home")
    from dagster import DagsterInstance

    with DagsterInstance.get() as instance:
        record = instance.get_run_record_by_id(run_id)
        stats = instance.get_run_step_stats(run_id)
    steps = {
        s.step_key: {"start": s.start_time, "end": s.end_time, "seconds": round(s.end_time - s.start_time, 2)}
        for s in stats
        if s.start_time and s.end_time
    }
    stages: dict[str, float] = {}
    for key, step in steps.items():
        stages[_stage(key)] = stages.get(_stage(key), 0.0) + step["seconds"]
    return {
        "run_id": run_id,
        "run_seconds": round(record.end_time - record.start_time, 1),
        "run_start": record.start_time,
        "run_end": record.end_time,
        "stages": {k: round(v, 1) for k, v in sorted(stages.items())},
        "steps": steps,
    }


def _dbt_target_dirs() -> list[str]:
    target = DBT_DIR / "target"
    return [p.name for p in target.glob("citybrain_dbt_*")] if target.exists() else []


def _dbt_own_time(steps: dict, new_dirs: list[str]) -> dict:
    """dbt's own execution time per dbt step: run_results.json of the `dbt build` invocations this run
    made (dagster-dbt gives each invocation a target directory named after the step)."""
    per_step = {}
    for name in new_dirs:
        results_path = DBT_DIR / "target" / name / "run_results.json"
        if not results_path.exists():
            continue
        results = json.loads(results_path.read_text(encoding="utf-8"))
        if results.get("args", {}).get("which") != "build":
            continue
        step = name.split("-", 1)[0]
        started = datetime.fromisoformat(results["metadata"]["invocation_started_at"].replace("Z", "+00:00"))
        generated = datetime.fromisoformat(results["metadata"]["generated_at"].replace("Z", "+00:00"))
        if step not in steps or not steps[step]["start"] <= started.timestamp() <= steps[step]["end"]:
            continue  # another run's invocation (e.g. a run of another lake at the same time)
        per_step[step] = {
            "step_seconds": steps[step]["seconds"],
            "dbt_invocation_seconds": round((generated - started).total_seconds(), 1),
            "dbt_elapsed_seconds": round(results["elapsed_time"], 1),
            "nodes": len(results["results"]),
        }
    return {
        "dbt_elapsed_seconds": round(sum(s["dbt_elapsed_seconds"] for s in per_step.values()), 1),
        "dbt_invocation_seconds": round(sum(s["dbt_invocation_seconds"] for s in per_step.values()), 1),
        "steps": per_step,
    }


# --- the floor ------------------------------------------------------------------------------------

FLOOR = """
import json, sys, time
from pathlib import Path
import duckdb
sys.path.insert(0, sys.argv[4])  # bench/: the ingestion floor
from citybrain.duckdb_extensions import NO_DOWNLOAD
from ingestion_floor import run_loads
from citybrain.privacy import small_cells
from citybrain.settings import duckdb_config
from citybrain.transform import udfs

warehouse, plan_path, work = sys.argv[1], sys.argv[2], Path(sys.argv[3])
plan = json.loads(open(plan_path, encoding="utf-8").read())
con = duckdb.connect(warehouse, config={**duckdb_config(), **NO_DOWNLOAD})
ingestion = run_loads(con, plan["loads"], work, dict(__import__("os").environ))
udfs.register(con)  # what the dbt plugin registers on dbt's connection
small_cells.register(con)
timings = {}
started = time.monotonic()
for node in plan["nodes"]:
    t = time.monotonic()
    for statement in node["statements"]:
        con.execute(statement)
    timings[node["name"]] = round(time.monotonic() - t, 3)
total = time.monotonic() - started
con.close()
print("FLOOR", json.dumps({"ingestion": ingestion, "seconds": round(total, 2), "nodes": timings}))
"""


def floor(home: Path, env: dict, day: date, batch_id: str, cursors: dict[str, str], night: str) -> dict:
    """One night's floor, in one bare DuckDB process on a copy of the warehouse as that night left it:
    the deliveries the night loaded, read into all-text tables (bench/ingestion_floor.py), then the
    night's transformation SQL as dbt compiles it. The two are timed and reported apart."""
    from citybrain.catalog import load_catalog

    work = home / f"floor_{night}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    # Same file name: compiled SQL names relations "warehouse".<schema>.<table> after the file.
    copy = work / "warehouse.duckdb"
    shutil.copyfile(home / "warehouse.duckdb", copy)
    dbt_env = {**env, "CITYBRAIN_WAREHOUSE": str(copy), "DBT_LOG_PATH": str(work / "dbt_logs")}
    dbt_vars = json.dumps({"min_date": day.isoformat(), "max_date": day.isoformat()})
    compile_command = [str(BIN / "dbt"), "compile", "--project-dir", str(DBT_DIR), "--profiles-dir", str(DBT_DIR),
                       "--target-path", str(work / "target"), "--vars", dbt_vars,
                       "--select", "resource_type:model resource_type:snapshot", "--quiet"]  # fmt: skip
    compiled, _ = measured(f"floor_{night}_dbt_compile", compile_command, dbt_env, home / "logs")
    manifest = json.loads((work / "target" / "manifest.json").read_text(encoding="utf-8"))
    nodes = floor_plan(manifest)
    unbuild_night_loads(copy, manifest, batch_id)
    # Which files: the night's log entries, found in the landing zone by SHA-256 (hashing is not timed).
    entries = night_entries(home / "warehouse.duckdb", batch_id)
    loads = plan_loads(load_catalog(), entries, home / "landing", cursors, env)
    (work / "plan.json").write_text(json.dumps({"nodes": nodes, "loads": loads}, indent=1), encoding="utf-8")
    command = [
        sys.executable,
        "-c",
        FLOOR,
        str(copy),
        str(work / "plan.json"),
        str(work),
        str(Path(__file__).parent),
    ]
    with served_env(home / "demo" / "hotline_store") as hotline:  # the API feed is fetched again
        execution, output = measured(f"floor_{night}_duckdb", command, {**env, **hotline}, home / "logs")
    reported = json.loads(output.split("FLOOR", 1)[1])
    slowest = sorted(reported["nodes"].items(), key=lambda kv: -kv[1])[:8]
    ingestion = reported["ingestion"]
    transformation = {
        "seconds": reported["seconds"],
        "models": sum(1 for n in nodes if n["kind"] != "snapshot"),
        "snapshots_select_only": sum(1 for n in nodes if n["kind"] == "snapshot"),
        "slowest_nodes": dict(slowest),
        "dbt_compile_seconds": compiled["seconds"],
    }
    result = {
        "day": day.isoformat(),
        "seconds": round(ingestion["seconds"] + transformation["seconds"], 2),
        "ingestion": {**ingestion, "feeds": summary(ingestion)},
        "transformation": transformation,
        "process_seconds": execution["seconds"],
        "peak_rss_mb": execution["peak_tree_rss_mb"],
    }
    unmatched = [x["feed"] for x in ingestion["loads"] if x["matched"] not in ("sha256", "rows")]
    result["ingestion"]["unmatched"] = unmatched
    print(f"    floor {night}: ingestion {ingestion['seconds']:.1f} s ({len(entries)} deliveries"
          f"{', unmatched: ' + ', '.join(unmatched) if unmatched else ''}), "
          f"transformation {transformation['seconds']:.1f} s", flush=True)  # fmt: skip
    shutil.rmtree(work, ignore_errors=True)
    return result


def unbuild_night_loads(warehouse: Path, manifest: dict, batch_id: str) -> None:
    """Take the night's loads out of the copy's models built load by load (tag ``load_incremental``,
    dbt_project/macros/portable.sql: staged versions, and the latest version kept per key), so the floor
    does the night's work again: their compiled SQL selects the loads a model has not built and the keys
    without a kept version, which after the night would be none. Not timed."""
    import duckdb

    relations = [
        n["relation_name"]
        for n in manifest["nodes"].values()
        if n["resource_type"] == "model" and "load_incremental" in n["config"].get("tags", [])
    ]
    con = duckdb.connect(str(warehouse))
    try:
        for relation in relations:
            con.execute(f"DELETE FROM {relation} WHERE _batch_id = ?", [batch_id])
    finally:
        con.close()


def floor_plan(manifest: dict) -> list[dict]:
    """Statements per model and snapshot, in dependency order."""
    nodes = {
        uid: n
        for uid, n in manifest["nodes"].items()
        if n["resource_type"] in ("model", "snapshot") and n["config"].get("enabled", True)
    }
    order = graphlib.TopologicalSorter(
        {uid: [d for d in n["depends_on"]["nodes"] if d in nodes] for uid, n in nodes.items()}
    ).static_order()
    plan = []
    for uid in order:
        node = nodes[uid]
        sql = node.get("compiled_code")
        materialized = node["config"].get("materialized")
        relation = node.get("relation_name")
        if sql is None or materialized == "ephemeral":
            continue
        if node["resource_type"] == "snapshot":
            kind, statements = "snapshot", [f"CREATE OR REPLACE TEMP TABLE floor_snapshot AS\n{sql}\n"]
        elif materialized == "view":
            kind, statements = "view", [f"CREATE OR REPLACE VIEW {relation} AS\n{sql}\n"]
        elif materialized == "incremental":
            key = node["config"].get("unique_key")
            keys = [key] if isinstance(key, str) else list(key or [])
            kind = "incremental"
            statements = [f"CREATE OR REPLACE TEMP TABLE floor_new AS\n{sql}\n"]
            if keys:
                columns = ", ".join(keys)
                statements.append(
                    f"DELETE FROM {relation} WHERE ({columns}) IN (SELECT DISTINCT {columns} FROM floor_new)"
                )
            statements.append(f"INSERT INTO {relation} BY NAME SELECT * FROM floor_new")
        else:
            kind, statements = "table", [f"CREATE OR REPLACE TABLE {relation} AS\n{sql}\n"]
        plan.append({"name": node["name"], "kind": kind, "statements": statements})
    return plan


# --- the whole benchmark ----------------------------------------------------------------------------


def lake_env(home: Path, memory_limit: str) -> dict:
    env = {
        **os.environ,
        "CITYBRAIN_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster_home"),
        "CITYBRAIN_DUCKDB_MEMORY_LIMIT": memory_limit,
        "CITYBRAIN_DUCKDB_TEMP_DIR": str(home / "duckdb_tmp"),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    for name in ("CITYBRAIN_WAREHOUSE", "CITYBRAIN_LANDING", "CITYBRAIN_CATALOG", "CITYBRAIN_CITY"):
        env.pop(name, None)  # everything under the bench lake's home
    return env


def generate(home: Path, env: dict, residents: int, days: int, end: date) -> dict:
    """Deliver the city's days up to ``end`` into the lake's landing zone (the same seed gives the same
    city; the full snapshots are re-delivered as of ``end``)."""
    command = [str(BIN / "citybrain"), "demo-data", "--residents", str(residents), "--days", str(days),
               "--end-date", end.isoformat()]  # fmt: skip
    result, _ = measured(f"generate_to_{end.isoformat()}", command, env, home / "logs")
    return result


def fresh(home: Path) -> None:
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)


def machine() -> dict:
    meminfo = Path("/proc/meminfo").read_text()
    total_kb = int(re.search(r"MemTotal:\s+(\d+)", meminfo)[1])
    return {
        "cores": os.cpu_count(),
        "memory_gb": round(total_kb / 2**20, 1),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--residents", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--compare-residents", type=int, help="also run day 1 at this many residents")
    parser.add_argument("--memory-limit", default="2GB", help="DuckDB memory limit of every connection")
    parser.add_argument("--work", type=Path, default=REPO / "bench" / "work" / "city_scale")
    parser.add_argument("--end-date", type=date.fromisoformat, help="day N (default: yesterday)")
    parser.add_argument("--definitions-repetitions", type=int, default=3)
    parser.add_argument("--no-readme", action="store_true", help="do not update README.md's table")
    parser.add_argument(
        "--no-record",
        action="store_true",
        help="a validation run: write the JSON into the lake, append nothing to bench/RESULTS.md or README.md",
    )
    args = parser.parse_args()
    if args.days < 1:
        parser.error("--days must be at least 1")
    if args.residents >= 1_000_000:
        print(
            f"WARNING: {args.residents:,} residents x {args.days} days is a long run (bench/RESULTS.md: "
            "a 1M x 7 run takes 10 to 25 minutes on 2 cores, a 10M night 15 to 25 minutes) and several GB "
            "of memory (the generator peaked at 1.1 GB for 1M and 4.0 GB for 10M residents; a night "
            "below 4 GB). Ctrl-C now for a smaller --residents.",
            flush=True,
        )
        time.sleep(5)

    end = args.end_date or date.today() - timedelta(days=1)
    start = end - timedelta(days=args.days - 1)
    args.work.mkdir(parents=True, exist_ok=True)
    if not (args.work / ".gitignore").exists():
        (args.work / ".gitignore").write_text("# bench lakes: generated, large\n*\n", encoding="utf-8")
    home = (args.work / f"r{args.residents}-d{args.days}").resolve()
    env = lake_env(home, args.memory_limit)
    started = time.monotonic()
    print(f"city_scale: {args.residents:,} residents x {args.days} days, lake {home}", flush=True)

    result: dict = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "scale": {
            "residents": args.residents,
            "days": args.days,
            "first_day": start.isoformat(),
            "last_day": end.isoformat(),
        },
        "duckdb_memory_limit": args.memory_limit,
    }
    # Deliveries arrive night by night, as in production: the demo generator writes a city as of its
    # end date (the household registry is a full snapshot with everyone born by then), so day 1 runs
    # on the deliveries as of day 1, the backfill on those as of day N-1, day N on those as of day N.
    # (Running day 1 on a snapshot as of day N would see residents born after the run's own days.)
    fresh(home)
    generation_day_1 = generate(home, env, args.residents, 1, start)
    result["day_1"] = run_partition("run_day_1", home, env, start, start)
    # Day 1's floor now, before later deliveries replace its files (hence not after the last run).
    floors = {"day_1": floor(home, env, start, result["day_1"]["run_id"], {}, "day_1")}
    if args.days > 2:
        generate(home, env, args.residents, args.days - 1, end - timedelta(days=1))
        with served_env(home / "demo" / "hotline_store") as hotline:
            backfill, _ = measured(
                "run_backfill",
                [
                    str(BIN / "citybrain"),
                    "run",
                    "--start",
                    (start + timedelta(days=1)).isoformat(),
                    "--end",
                    (end - timedelta(days=1)).isoformat(),
                ],
                {**env, **hotline},
                home / "logs",
            )
        result["backfill_days_2_to_n_minus_1"] = backfill
    if args.days > 1:
        result["generation"] = generate(home, env, args.residents, args.days, end)
        cursors = read_cursors(home / "warehouse.duckdb")  # where day N's database and API fetches start
        nightly = run_partition("run_day_n", home, env, end, end)
        floors["day_n"] = floor(home, env, end, nightly["run_id"], cursors, "day_n")
    else:
        result["generation"], nightly = generation_day_1, result["day_1"]
        floors["day_n"] = floors["day_1"]
    result["nightly"] = nightly
    result["floors"] = floors
    result["definitions_load"] = _definitions_load(args.definitions_repetitions)

    if args.compare_residents:
        other = (args.work / f"r{args.compare_residents}-d1").resolve()
        other_env = lake_env(other, args.memory_limit)
        print(f"compare: {args.compare_residents:,} residents, day 1 only, lake {other}", flush=True)
        fresh(other)
        generate(other, other_env, args.compare_residents, 1, start)
        compared = run_partition("run_day_1", other, other_env, start, start)
        result["compare"] = {
            "residents": args.compare_residents,
            "day_1_seconds": compared["seconds"],
            "day_1_peak_tree_rss_mb": compared["peak_tree_rss_mb"],
            "stages": compared["stages"],
        }

    result["ratios"] = ratios(result)
    result["total_bench_seconds"] = round(time.monotonic() - started, 1)
    if args.no_record:
        (home / "city_scale.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print("\n" + table(result) + f"\nnot recorded (--no-record); JSON in {home / 'city_scale.json'}")
        return
    write_results(result, update_readme=not args.no_readme)


def _definitions_load(repetitions: int) -> dict:
    sys.path.insert(0, str(Path(__file__).parent))
    from definitions_load import measure

    print("  definitions load", flush=True)
    return measure(REPO, repetitions)


def ratios(r: dict) -> dict:
    nightly, first = r["nightly"], r["day_1"]
    floor_n, floor_1 = r["floors"]["day_n"], r["floors"]["day_1"]
    transformation = floor_n["transformation"]["seconds"]
    out = {
        "pipeline_over_floor": round(nightly["seconds"] / floor_n["seconds"], 2),
        "pipeline_over_transformation_floor": round(nightly["seconds"] / transformation, 2),
        "ingest_over_ingestion_floor": _over(
            nightly["stages"].get("ingest", 0.0), floor_n["ingestion"]["seconds"]
        ),
        "day_1_over_floor": round(first["seconds"] / floor_1["seconds"], 2),
        "day_1_ingest_over_ingestion_floor": _over(
            first["stages"].get("ingest", 0.0), floor_1["ingestion"]["seconds"]
        ),
        "dbt_steps_over_floor": round(nightly["stages"].get("dbt", 0.0) / transformation, 2),
        "dbt_execution_over_floor": round(nightly["dbt"]["dbt_elapsed_seconds"] / transformation, 2),
        "gx_share": nightly["shares"]["gx"],
        "startup_share": nightly["shares"]["startup"],
        "peak_memory_gb": round(nightly["peak_tree_rss_mb"] / 1024, 2),
        "day_1_peak_memory_gb": round(first["peak_tree_rss_mb"] / 1024, 2),
        "peak_pss_gb": round(nightly.get("peak_tree_pss_mb", 0) / 1024, 2),
        "day_1_peak_pss_gb": round(first.get("peak_tree_pss_mb", 0) / 1024, 2),
        "definitions_load_seconds": r["definitions_load"]["validate_seconds_median"],
    }
    if r["scale"]["days"] > 1:
        out["day_n_over_day_1"] = round(nightly["seconds"] / first["seconds"], 2)
    backfill = r.get("backfill_days_2_to_n_minus_1")
    if backfill:
        # A backfill of k days is one run; a 30-day backfill "≤ 30× one later night" asks that a backfilled day
        # cost at most one later night. Measured over the k = N-2 middle days, projected linearly to 30.
        days = r["scale"]["days"] - 2
        out["backfill_days"] = days
        out["backfill_day_over_later_night"] = round(backfill["seconds"] / days / nightly["seconds"], 2)
        out["backfill_30_days_over_later_night"] = round(
            30 * backfill["seconds"] / days / nightly["seconds"], 1
        )
    if "compare" in r:
        out["day_1_residents_ratio"] = round(r["scale"]["residents"] / r["compare"]["residents"], 2)
        out["day_1_time_ratio"] = round(first["seconds"] / r["compare"]["day_1_seconds"], 2)
    return out


def _over(a: float, b: float) -> float | None:
    return round(a / b, 2) if b else None


def _times(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}×"


def table(r: dict) -> str:
    q, n, first = r["ratios"], r["nightly"], r["day_1"]
    floor_n, floor_1 = r["floors"]["day_n"], r["floors"]["day_1"]
    m, s = r["machine"], r["scale"]
    big = s["residents"] >= 10_000_000
    later_target = "≤ 1.3× at 10M" if big else "≤ 1.5× at 1M, ≤ 1.3× at 10M"
    memory_target = "≤ 4 GB at 10M" + ("" if big else " (not at this scale)")

    def floor_text(f: dict) -> str:
        i, t = f["ingestion"]["seconds"], f["transformation"]["seconds"]
        return f"{i:.1f} s + {t:.1f} s = {f['seconds']:.1f} s"

    rows = [
        ("later night (day N), end to end", f"{n['seconds']:.1f} s", ""),
        ("floor day N: ingestion + transformation floor", floor_text(floor_n), ""),
        ("pipeline / floor (day N)", _times(q["pipeline_over_floor"]), later_target),
        ("pipeline / transformation floor (day N; the earlier tables' \"pipeline / floor\")",
         _times(q["pipeline_over_transformation_floor"]), ""),
        ("ingest stage / ingestion floor (day N)",
         f"{_times(q['ingest_over_ingestion_floor'])} ({n['stages'].get('ingest', 0.0):.1f} s)", ""),
        ("first night (day 1), end to end", f"{first['seconds']:.1f} s", ""),
        ("floor day 1: ingestion + transformation floor", floor_text(floor_1), ""),
        ("pipeline / floor (day 1)", _times(q["day_1_over_floor"]), "≤ 2×"),
        ("ingest stage / ingestion floor (day 1)",
         f"{_times(q['day_1_ingest_over_ingestion_floor'])} ({first['stages'].get('ingest', 0.0):.1f} s)", ""),
        ("dbt steps / transformation floor (dbt execution / transformation floor), day N",
         f"{q['dbt_steps_over_floor']:.2f}× ({q['dbt_execution_over_floor']:.2f}×)", ""),
        ("GX share of the run (day N)", f"{q['gx_share']:.1%}", "≤ 10 %"),
        ("Dagster + dbt overhead share (start-up, parsing, events)", f"{q['startup_share']:.1%}", ""),
        ("peak memory, process tree, day N (day 1)",
         f"{q['peak_memory_gb']:.2f} GB ({q['day_1_peak_memory_gb']:.2f} GB)", memory_target),
        ("peak proportional memory (PSS: shared pages once), day N (day 1)",
         f"{q['peak_pss_gb']:.2f} GB ({q['day_1_peak_pss_gb']:.2f} GB)", ""),
        ("step running at the peak (RSS sum; PSS), day N",
         f"{n.get('peak_tree_rss_step', '–')}; {n.get('peak_tree_pss_step', '–')}", ""),
    ]  # fmt: skip
    if "day_n_over_day_1" in q:
        rows.append(("day N / day 1", f"{q['day_n_over_day_1']:.2f}×", "≤ 1.2× (issue 7)"))
    if "backfill_days" in q:
        b = r["backfill_days_2_to_n_minus_1"]
        rows.append((f"backfill of {q['backfill_days']} days (one run) per day / later night; 30 days projected",
                     f"{q['backfill_day_over_later_night']:.2f}× ({b['seconds']:.1f} s); "
                     f"{q['backfill_30_days_over_later_night']:.1f}×", "30 days ≤ 30× at 1M"))  # fmt: skip
    if "compare" in r:
        c = r["compare"]
        rows.append((f"day 1 at {s['residents']:,} / at {c['residents']:,} residents",
                     f"{q['day_1_time_ratio']:.2f}× ({c['day_1_seconds']:.1f} s)",
                     f"residents ×{q['day_1_residents_ratio']:g}"))  # fmt: skip
    d = r["definitions_load"]
    rows.append(("definitions load (`dagster definitions validate`)",
                 f"{d['validate_seconds_median']:.2f} s (import {d['import_seconds_median']:.2f} s)", "≤ 5 s"))  # fmt: skip
    stages = ", ".join(f"{k} {v:.0f} s" for k, v in n["stages"].items())
    first_stages = ", ".join(f"{k} {v:.0f} s" for k, v in first["stages"].items())
    head = (
        (f"{r['label']}\n\n" if r.get("label") else "")
        + f"**{s['residents']:,} residents × {s['days']} days** — {r['date']}, {m['cores']} cores, "
        f"{m['memory_gb']} GB, DuckDB memory limit {r['duckdb_memory_limit']}; "
        f"generation {r['generation']['seconds']:.0f} s, peak {r['generation']['peak_tree_rss_mb']:,} MB\n\n"
    )
    lines = ["| measure | value | target |", "|---|---|---|", *[f"| {a} | {b} | {c} |" for a, b, c in rows]]
    return (
        head
        + "\n".join(lines)
        + f"\n\nStages, day N: {stages}; day 1: {first_stages}.\n\n"
        + FLOOR_NOTE
        + "\n\n"
        + ingestion_table(floor_1, floor_n)
    )


FLOOR_NOTE = (
    "Floor: one bare DuckDB process on a copy of the warehouse as the night left it. Ingestion floor: the "
    "deliveries the night's `raw.ingestion_log` lists (files found by SHA-256, database rows from the "
    "cursor before the night, API pages fetched again) read into all-text tables by DuckDB's own readers "
    "(bench/ingestion_floor.py). Transformation floor: the night's compiled SQL (as before). "
    "Pipeline / floor uses their sum."
)


def ingestion_table(floor_1: dict, floor_n: dict) -> str:
    """Per feed: the floor's reader and seconds on each night, rows read against rows the pipeline received."""
    f1, fn = floor_1["ingestion"]["feeds"], floor_n["ingestion"]["feeds"]
    lines = [
        "| feed | reader | day 1 floor | rows (received) | day N floor | rows (received) |",
        "|---|---|---|---|---|---|",
    ]
    for feed in sorted(set(f1) | set(fn)):
        cells = []
        for f in (f1.get(feed), fn.get(feed)):
            if f is None:
                cells += ["–", "–"]
                continue
            flag = "" if f["matched"] in ("sha256", "rows") else f" ({f['matched']})"
            tried = "; ".join(f"{way} {t:.2f} s" for way, t in f.get("tried", {}).items())
            seconds = f"{f['seconds']:.2f} s" + (f" (tried: {tried})" if tried else "")
            cells += [seconds, f"{f['rows']:,} ({f['rows_received']:,}){flag}"]
        reader = (fn.get(feed) or f1[feed])["reader"]
        lines.append(f"| {feed} | {reader} | " + " | ".join(cells) + " |")
    extra = ", ".join(
        f"{night}: extensions loaded {f['ingestion']['extension_load_seconds']:.2f} s, "
        f"checkpoint {f['ingestion']['checkpoint_seconds']:.2f} s"
        for night, f in (("day 1", floor_1), ("day N", floor_n))
    )
    return "\n".join(lines) + f"\n\nIn the ingestion floor also: {extra}.\n"


def write_results(r: dict, update_readme: bool) -> None:
    RESULTS_JSON.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_JSON.write_text(json.dumps(r, indent=2) + "\n", encoding="utf-8")
    text = table(r)
    if not RESULTS_MD.exists():
        RESULTS_MD.write_text(
            "# Benchmark results\n\nAppended by `python bench/city_scale.py` (newest last); "
            "the JSON of the latest run is bench/results/city_scale.json.\n",
            encoding="utf-8",
        )
    with RESULTS_MD.open("a", encoding="utf-8") as md:
        md.write("\n## city_scale\n\n" + text)
    if update_readme:
        readme = README.read_text(encoding="utf-8")
        if README_START in readme and README_END in readme:
            before, rest = readme.split(README_START, 1)
            after = rest.split(README_END, 1)[1]
            README.write_text(f"{before}{README_START}\n{text}{README_END}{after}", encoding="utf-8")
    print("\n" + text)
    print(f"written to {RESULTS_JSON} and {RESULTS_MD}")


if __name__ == "__main__":
    main()
