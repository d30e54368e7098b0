"""What the quality gate costs: time and peak memory of the Great Expectations step against the run.

    python bench/gate_cost.py [--residents 200000] [--days 7] [--home /tmp/citybrain-bench-gate]

Generates a demo city (default: the `make demo` scale), runs the nightly job for all its days in a
child process (`citybrain run`), then reads from the run's Dagster event log how long the GX check
steps took, and validates every suite again in a second child process on its own to get the gate's
peak memory (in one in-process run all steps share one process and one high-water mark). Prints the
ratios gate / run; writes bench/results/gate_cost.json. No target is asserted: this is a measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from demo_city.hotline_api import served_env  # noqa: E402  (a demo lake: `citybrain run` serves no demo API)

BIN = Path(sys.executable).parent

VALIDATE_ALL = """
import sys, time
from pathlib import Path
from citybrain import settings
from citybrain.quality.suites import load_suites
from citybrain.quality.validate import validate_suites
days = sys.argv[1:]
started = time.monotonic()
runs = validate_suites(settings.warehouse_path(), [(s, days if s.partition else [None]) for s in load_suites()])
print("EXPECTATIONS", sum(len(r.outcomes) for r in runs), "SECONDS", round(time.monotonic() - started, 2))
"""


def child(command: list[str], env: dict) -> tuple[float, int, str]:
    """Run a child process; its wall time, its own peak RSS in MB, and its stdout."""
    started = time.monotonic()
    process = subprocess.Popen(
        command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(command)} failed:\n{output[-3000:]}")
    return time.monotonic() - started, usage.ru_maxrss // 1024, output


def gx_step_seconds(home: Path) -> tuple[float, float, str]:
    """Seconds spent in the gx_* steps and in the whole latest run, from the Dagster event log."""
    os.environ["DAGSTER_HOME"] = str(home / "dagster_home")
    from dagster import DagsterInstance

    with DagsterInstance.get() as instance:
        run = instance.get_runs(limit=1)[0]
        stats = instance.get_run_step_stats(run.run_id)
        record = instance.get_run_record_by_id(run.run_id)
        gx = sum((s.end_time - s.start_time) for s in stats if s.step_key.startswith("gx_") and s.end_time)
        total = record.end_time - record.start_time
        return gx, total, run.run_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--residents", type=int, default=200_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--home", type=Path, default=Path("/tmp/citybrain-bench-gate"))
    args = parser.parse_args()

    shutil.rmtree(args.home, ignore_errors=True)
    env = {**os.environ, "CITYBRAIN_HOME": str(args.home), "DAGSTER_HOME": str(args.home / "dagster_home")}
    end = date.today() - timedelta(days=1)
    start = end - timedelta(days=args.days - 1)
    citybrain = str(BIN / "citybrain")
    child([citybrain, "demo-data", "--residents", str(args.residents), "--days", str(args.days),
           "--end-date", end.isoformat()], env)  # fmt: skip
    with served_env(args.home / "demo" / "hotline_store") as hotline:  # `citybrain run` serves no demo API
        run_seconds, run_peak_mb, output = child(
            [citybrain, "run", "--start", start.isoformat(), "--end", end.isoformat()], {**env, **hotline}
        )
    if "SUCCESS" not in output:
        sys.exit(output[-3000:])
    gx_seconds, dagster_run_seconds, run_id = gx_step_seconds(args.home)
    days = [(start + timedelta(days=i)).isoformat() for i in range(args.days)]
    alone_seconds, gx_peak_mb, gx_output = child([sys.executable, "-c", VALIDATE_ALL, *days], env)
    expectations = int(gx_output.split("EXPECTATIONS")[1].split()[0])

    result = {
        "date": date.today().isoformat(),
        "machine": {
            "cores": os.cpu_count(),
            "memory_gb": round(_memory_gb(), 1),
            "python": platform.python_version(),
        },
        "scale": {"residents": args.residents, "days": args.days},
        "run_id": run_id,
        "run_seconds": round(run_seconds, 1),
        "run_peak_rss_mb": run_peak_mb,
        "gx_step_seconds_in_run": round(gx_seconds, 1),
        "gx_share_of_run_time": round(gx_seconds / dagster_run_seconds, 3),
        "gx_alone_seconds": round(alone_seconds, 1),
        "gx_alone_peak_rss_mb": gx_peak_mb,
        "gx_peak_over_run_peak": round(gx_peak_mb / run_peak_mb, 3),
        "expectations_evaluated": expectations,
    }
    out = REPO / "bench" / "results" / "gate_cost.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\nquality gate cost at {args.residents:,} residents x {args.days} days ({os.cpu_count()} cores)")
    print(f"  nightly run (child process):   {run_seconds:8.1f} s   peak {run_peak_mb:6d} MB")
    print(
        f"  GX check steps inside the run: {gx_seconds:8.1f} s   = {result['gx_share_of_run_time']:.1%} of the run"
    )
    print(f"  GX alone, all suites ({expectations} expectations): {alone_seconds:.1f} s, peak {gx_peak_mb} MB"
          f" = {result['gx_peak_over_run_peak']:.2f} x the run's peak")  # fmt: skip
    print(f"  written to {out}")


def _memory_gb() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


if __name__ == "__main__":
    main()
