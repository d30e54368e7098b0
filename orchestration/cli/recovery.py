"""Crash recovery for ``citybrain run``: what a run killed with SIGKILL leaves behind, cleaned before the
next one (docs/RELIABILITY.md)."""

from __future__ import annotations

import socket
from pathlib import Path

PROCESS_TAG = "citybrain/process"  # host:pid:start time of the `citybrain run` process executing the run


def process_token(pid: int) -> str:
    """host:pid:start time, so a pid reused by a later process is not mistaken for the run's."""
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
    from dagster import DagsterRunStatus, RunsFilter

    from citybrain.publication import recover
    from citybrain.warehouse import Warehouse

    host = socket.gethostname()
    active = [DagsterRunStatus.STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.CANCELING]
    for run in instance.get_runs(RunsFilter(statuses=active)):
        token = run.tags.get(PROCESS_TAG, "")
        run_host, _, rest = token.partition(":")
        pid = rest.partition(":")[0]
        if run_host != host or not pid.isdigit() or process_token(int(pid)) == token:
            continue  # another host's run, a run this CLI did not start, or its process is still alive
        instance.report_run_failed(
            run, message=f"abandoned: the process that executed this run ({token}) is gone (killed?)"
        )
        print(f"  marked run {run.run_id[:8]} FAILURE: its process {token} is gone")
    with Warehouse.from_settings().lock():
        rolled_forward = recover()
    if rolled_forward:
        print(f"  completed the interrupted publication of pool version {rolled_forward}")
