"""dbt run by a test on the project's own files, against a warehouse of its own, with its own target and
log directory (so it never touches dbt_project/target)."""

import os
import subprocess
import sys
from pathlib import Path

from citybrain.settings import REPO_ROOT

DBT_DIR = REPO_ROOT / "dbt_project"
WINDOW_ENV = ("CITYBRAIN_MIN_DATE", "CITYBRAIN_MAX_DATE")  # the run's days (macros/partition_window.sql)


def run_dbt(
    command: list[str], target: Path, warehouse: Path, day: str | None = None
) -> subprocess.CompletedProcess:
    """``dbt <command>`` with the run's window set to ``day`` (None: no window, everything)."""
    dbt = Path(sys.executable).with_name("dbt")
    env = {**os.environ, "CITYBRAIN_WAREHOUSE": str(warehouse)}
    for name in WINDOW_ENV:
        if day is None:
            env.pop(name, None)
        else:
            env[name] = day
    return subprocess.run(
        [str(dbt), *command, "--profiles-dir", ".", "--target-path", str(target), "--log-path", str(target)],
        cwd=DBT_DIR,
        capture_output=True,
        text=True,
        env=env,
    )
