"""The dbt steps' target directories: one per invocation (dagster-dbt's ``<step>-<run>-<unique>`` under
dbt_project/target), holding what dbt wrote for it: dbt.log, manifest.json, run_results.json, the parse
state and every node's compiled and executed SQL: 4-6 MB a step whatever the city's size (9-10 MB with dbt's
log at debug, as it was). Nothing reads them once the step has ended; they are there for a data engineer
looking into a recent step. Three steps a night left them all, close to a gigabyte a month under the
project directory of an unattended lake. A step's directory is removed once it is more than
``STEP_TARGET_DAYS_KEPT`` days old and not among the ``STEP_TARGETS_KEPT`` most recent (every step of the
last ten nights, however long ago they ran)."""

import shutil
import time
from pathlib import Path

STEP_TARGETS_KEPT = 30
STEP_TARGET_DAYS_KEPT = 7
STEP_TARGET_PREFIX = "citybrain_dbt_"  # the dbt steps' names (assets/dbt/models.py)


def prune_step_targets(
    root: Path, keep: int = STEP_TARGETS_KEPT, days: float = STEP_TARGET_DAYS_KEPT, now: float | None = None
) -> list[Path]:
    """Remove the step directories under ``root`` older than ``days`` beyond the ``keep`` most recently
    modified; the removed ones. A step still running (of another run) has a recent directory, and a
    directory another process removes meanwhile is skipped."""
    oldest_kept = (time.time() if now is None else now) - days * 86_400
    steps = []
    for path in root.glob(f"{STEP_TARGET_PREFIX}*"):
        try:
            if path.is_dir():
                steps.append((path.stat().st_mtime, path))
        except FileNotFoundError:
            continue
    steps.sort(reverse=True)
    removed = [path for modified, path in steps[keep:] if modified < oldest_kept]
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed
