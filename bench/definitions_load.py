"""How long the code location takes to load: what every `dagster` command, the UI and each run pay first.

    python bench/definitions_load.py [--repetitions 5] [--repo DIR]

Three wall times, each the median of fresh child processes (a warm file cache, as on a server):
``import``: ``import orchestration.definitions`` (builds the Definitions); ``resolve``: that plus
resolving the asset graph and validating the definitions (what a run or the UI does next);
``validate``: ``dagster definitions validate -w workspace.yaml`` end to end (CLI start-up included).
Also lists which heavy libraries the load imported, and whether the libraries' bytecode is cached
(``make setup`` compiles it; without it each load recompiles them). ``--repo`` measures another
checkout of the project with this venv (e.g. an export of an earlier commit), for before/after
comparisons.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HEAVY = ("pandas", "pyarrow", "numpy", "sqlalchemy", "great_expectations", "openpyxl", "duckdb", "requests")

IMPORT = "import orchestration.definitions"
RESOLVE = (
    "import dagster, orchestration.definitions as d\n"
    "d.defs.resolve_asset_graph()\n"
    "dagster.Definitions.validate_loadable(d.defs)\n"
)
MODULES = (
    "import sys, json, orchestration.definitions\n"
    f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
)
# Whether the libraries' compiled bytecode is on disk: without it (an install without --compile-bytecode,
# and PYTHONDONTWRITEBYTECODE set) every load compiles dagster, dbt-core etc. again, about 2.5 s of CPU.
BYTECODE = (
    "import importlib.util, json, os, dagster\n"
    "print(json.dumps(os.path.exists(importlib.util.cache_from_source(dagster.__file__))))\n"
)


def _timed(command: list[str], cwd: Path, env: dict) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one child process."""
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.monotonic() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(command)} failed:\n{output.decode(errors='replace')[-3000:]}")
    return elapsed, usage.ru_utime + usage.ru_stime


def measure(repo: Path = REPO, repetitions: int = 5) -> dict:
    python = str(BIN / "python")
    with tempfile.TemporaryDirectory(prefix="citybrain-defs-") as dagster_home:
        # A scratch Dagster instance: validating must not touch the lake's run history. PYTHONPATH puts
        # --repo's modules before the editable install of this checkout (the dagster CLI would not).
        env = {**os.environ, "DAGSTER_HOME": dagster_home, "PYTHONPATH": str(repo)}
        commands = {
            "import": [python, "-c", IMPORT],
            "resolve": [python, "-c", RESOLVE],
            "validate": [str(BIN / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        }
        _timed(commands["import"], repo, env)  # warm the file cache and .pyc files
        runs = {name: [_timed(cmd, repo, env) for _ in range(repetitions)] for name, cmd in commands.items()}
        modules = subprocess.run([python, "-c", MODULES], cwd=repo, env=env, capture_output=True, text=True)
        bytecode = subprocess.run([python, "-c", BYTECODE], cwd=repo, env=env, capture_output=True, text=True)
    return {
        "repetitions": repetitions,
        **{
            f"{name}_seconds_median": round(statistics.median(w for w, _ in v), 2) for name, v in runs.items()
        },
        **{f"{name}_seconds_min": round(min(w for w, _ in v), 2) for name, v in runs.items()},
        # CPU time is what a busy machine cannot inflate: the wall time on an idle one is close to it.
        **{
            f"{name}_cpu_seconds_median": round(statistics.median(c for _, c in v), 2)
            for name, v in runs.items()
        },
        "load_average_1min": round(os.getloadavg()[0], 2),
        "heavy_modules_imported": json.loads(modules.stdout or "[]"),
        "library_bytecode_cached": json.loads(bytecode.stdout or "null"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--repo", type=Path, default=REPO)
    args = parser.parse_args()
    print(json.dumps(measure(args.repo.resolve(), args.repetitions), indent=2))


if __name__ == "__main__":
    main()
