"""The ingestion job on a Dask cluster: every feed's step runs in a Dask worker process, not in the run.

A real `distributed.LocalCluster` (2 worker processes, 1 thread each, on 127.0.0.1) plays an existing
cluster. The project's `raw_ingestion` job runs on it for a small generated city the way an operator
starts it, `dagster job execute -m orchestration.definitions` with CITYBRAIN_EXECUTOR=dask and
CITYBRAIN_DASK_SCHEDULER pointing at the scheduler (orchestration/executors.py), against a persistent
instance in a temporary DAGSTER_HOME. The test checks that the run succeeded, that every feed was
ingested with received = loaded + quarantined in raw.ingestion_log, and that the steps really ran in
the cluster: each step's events carry the pid of one of the two Dask workers (both were used), never
the pid of the process that ran the job, and the scheduler's task stream lists one task per step.
"""

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus

from citybrain.settings import REPO_ROOT
from orchestration.executors import DASK_SCHEDULER_ENV, EXECUTOR_ENV
from tests.demo_lake import demo_lake
from tests.services import stop_process_group

DAY = "2026-11-20"
COUNTIES = ["330102"]
JOB = "raw_ingestion"
BIN = Path(sys.executable).parent
INSTANCE_CONFIG = REPO_ROOT / "orchestration" / "instance" / "dagster.yaml"


@contextlib.contextmanager
def dask_cluster(directory: Path):
    """A scheduler and two worker processes (one thread each) on 127.0.0.1, started like on a cluster
    machine (`dask scheduler`, `dask worker`), with the environment of the lake (CITYBRAIN_HOME, the
    demo hotline API's URL) as the deployment's workers would have it. The workers load the code location
    when they start (`--preload`), as long-lived workers would have long before a run. Yields a client."""
    from distributed import Client

    scheduler_file = directory / "scheduler.json"
    log = directory / "dask.log"
    processes = []
    try:
        processes.append(
            _start(
                "dask", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                "--scheduler-file", str(scheduler_file), log=log,
            )
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while not scheduler_file.exists():
            assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
            time.sleep(0.2)
        processes.append(
            _start(
                "dask", "worker", "--scheduler-file", str(scheduler_file), "--nworkers", "2",
                "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard",
                "--preload", "orchestration.definitions", log=log,
            )
        )  # fmt: skip
        with Client(scheduler_file=str(scheduler_file), timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
            yield client, log
    finally:
        for process in reversed(processes):  # workers before the scheduler
            stop_process_group(process, grace=10)


def _start(*command: str, log: Path) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(BIN / command[0]), *command[1:]],
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the worker's nanny and worker processes
        )


def test_ingestion_steps_run_in_the_dask_workers(tmp_path, catalog):
    home = tmp_path / "lake"
    (home / "dagster_home").mkdir(parents=True)
    with demo_lake(home, COUNTIES, [DAY], residents=300, defect_rate=0.05):
        os.environ.pop(EXECUTOR_ENV, None)
        shutil.copyfile(INSTANCE_CONFIG, home / "dagster_home" / "dagster.yaml")
        with DagsterInstance.get():  # the instance's SQLite storage, created once before any worker
            pass
        with dask_cluster(tmp_path) as (client, dask_log):
            worker_pids = set(client.run(os.getpid).values())
            assert len(worker_pids) == 2 and os.getpid() not in worker_pids
            client.get_task_stream()  # start recording the scheduler's task stream
            started = time.monotonic()
            done = subprocess.run(
                [
                    str(BIN / "dagster"),
                    "job",
                    "execute",
                    "-m",
                    "orchestration.definitions",
                    "-j",
                    JOB,
                    "--tags",
                    json.dumps(
                        {
                            "dagster/asset_partition_range_start": DAY,
                            "dagster/asset_partition_range_end": DAY,
                        }
                    ),
                ],
                cwd=REPO_ROOT,
                env={
                    **os.environ,
                    EXECUTOR_ENV: "dask",
                    DASK_SCHEDULER_ENV: client.scheduler_info()["address"],
                },
                capture_output=True,
                text=True,
                timeout=300,
            )
            elapsed = time.monotonic() - started
            tasks = client.get_task_stream()
        print(f"dagster job execute on the Dask cluster: {elapsed:.1f} s")
        assert done.returncode == 0, (done.stdout + done.stderr)[-4000:] + dask_log.read_text()[-2000:]

        with DagsterInstance.get() as instance:
            (run,) = instance.get_runs()
            assert run.job_name == JOB and run.status == DagsterRunStatus.SUCCESS
            records = instance.get_records_for_run(run.run_id).records
            events = [r.event_log_entry.dagster_event for r in records]
            events = [e for e in events if e is not None]
            times = {
                (e.event_type, e.step_key): r.event_log_entry.timestamp
                for r in records
                if (e := r.event_log_entry.dagster_event) is not None
            }

    # The run's own events come from the process `dagster job execute` ran the job in...
    (run_start,) = [e for e in events if e.event_type == DagsterEventType.RUN_START]
    orchestrator = run_start.pid
    assert orchestrator not in worker_pids and orchestrator != os.getpid()
    # ...every step's from a Dask worker: each step started, and succeeded, in a worker process.
    step_pids = {e.step_key: e.pid for e in events if e.event_type == DagsterEventType.STEP_START}
    succeeded = {e.step_key for e in events if e.event_type == DagsterEventType.STEP_SUCCESS}
    feed_steps = {f"raw__{feed.id}" for feed in catalog.feeds}
    assert feed_steps <= set(step_pids), sorted(feed_steps - set(step_pids))
    assert set(step_pids) == succeeded
    assert set(step_pids.values()) <= worker_pids, (step_pids, worker_pids)
    assert set(step_pids.values()) == worker_pids  # both workers took steps: spread, not just moved
    run_started = times[(DagsterEventType.RUN_START, None)]
    first_step = min(times[(DagsterEventType.STEP_START, step)] for step in step_pids)
    last_step = max(times[(DagsterEventType.STEP_SUCCESS, step)] for step in step_pids)
    run_ended = times[(DagsterEventType.RUN_SUCCESS, None)]
    per_worker = sorted(list(step_pids.values()).count(pid) for pid in worker_pids)
    print(
        f"run start -> first step {first_step - run_started:.1f} s, steps {last_step - first_step:.1f} s "
        f"({len(step_pids)} steps, {per_worker} per worker), run {run_ended - run_started:.1f} s"
    )
    # The scheduler ran one task per step (dagster-dask names them <job>.<step key>).
    task_names = {t["key"] for t in tasks}
    assert {f"{JOB}.{step}" for step in step_pids} <= task_names, sorted(task_names)

    # Every feed was ingested by this run, and every delivered row is accounted for.
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        rows = con.execute(
            "SELECT feed_id, sum(rows_received), sum(rows_loaded), sum(rows_quarantined), "
            "count(*) FILTER (WHERE status = 'failed') FROM raw.ingestion_log WHERE batch_id = ? "
            "GROUP BY feed_id",
            [run.run_id],
        ).fetchall()
    finally:
        con.close()
    by_feed = {feed_id: counts for feed_id, *counts in rows}
    assert set(by_feed) == {feed.id for feed in catalog.feeds}
    for feed_id, (received, loaded, quarantined, failed) in by_feed.items():
        assert received > 0 and received == loaded + quarantined and failed == 0, (feed_id, by_feed)
    assert sum(q for _, _, q, _ in by_feed.values()) > 0  # the injected defects were quarantined
