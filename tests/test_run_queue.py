"""Two runs never write the warehouse at once: the second waits QUEUED until the first has finished.

End to end with the real pieces: a DAGSTER_HOME with the project's instance config
(orchestration/instance/dagster.yaml, `concurrency.runs.max_concurrent_runs: 1`); the project's code
location (orchestration.definitions, what workspace.yaml loads) served by `dagster code-server`; two
runs of its `raw_ingestion` job (one small feed) submitted through the queued run coordinator with the
`dagster job launch` CLI; and a real `dagster-daemon run` that dequeues them and launches each in a run
worker of its own. The test watches the run storage meanwhile.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus

from citybrain.settings import REPO_ROOT
from tests.services import observe_runs, stop_process_group
from tests.test_ingest_files import REGISTRY_ROW, registry_csv, write

BIN = Path(sys.executable).parent
INSTANCE_CONFIG = REPO_ROOT / "orchestration" / "instance" / "dagster.yaml"
MODULE = "orchestration.definitions"  # the code location workspace.yaml loads
IN_PROGRESS = {DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING}
DONE = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
DEADLINE_S = 180
# Steps run inside the run worker instead of one more subprocess per step (which would import the
# code location once more): the queue does not depend on the executor, the test's time does.
IN_PROCESS = json.dumps({"execution": {"config": {"in_process": {}}}})


def _cli(*args: str, log: Path) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(BIN / args[0]), *args[1:]],
            cwd=REPO_ROOT,
            env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the daemon's code server and run workers
        )


def _event_time(instance: DagsterInstance, run_id: str, event_type: DagsterEventType) -> float:
    records = instance.get_records_for_run(run_id, of_type=event_type).records
    assert records, f"run {run_id}: no {event_type.value} event"
    return records[0].event_log_entry.timestamp


def test_a_second_run_waits_queued_until_the_first_has_finished(lake, catalog, tmp_path):
    shutil.copyfile(INSTANCE_CONFIG, lake / "dagster_home" / "dagster.yaml")
    rows = [REGISTRY_ROW.format(id="330102199001011234", n=1), REGISTRY_ROW.format(id="", n=2)]
    write(lake / "landing", "public_security/household_registry_20261120.csv", registry_csv(rows, catalog))
    log = tmp_path / "dagster.log"
    processes: list[subprocess.Popen] = []
    # The instance's SQLite storage is created here, once: CLI processes starting on an empty
    # DAGSTER_HOME at the same moment would race to create its tables.
    with DagsterInstance.get() as instance:
        try:
            observations = _queue_two_runs_and_watch(instance, processes, log, tmp_path / "code.sock")
        finally:
            for process in reversed(processes):  # daemon before the code server
                stop_process_group(process)

        final = observations[-1]
        assert set(final.values()) == {DagsterRunStatus.SUCCESS}, (
            f"{final}\n{log.read_text(errors='replace')[-3000:]}"
        )
        # Never two runs in progress at once, at any observation.
        overlapping = [o for o in observations if sum(s in IN_PROGRESS for s in o.values()) > 1]
        assert not overlapping, overlapping[0]

        # The run launched first is the one in progress while the other one waited QUEUED.
        first, second = sorted(
            final, key=lambda run_id: _event_time(instance, run_id, DagsterEventType.RUN_STARTING)
        )
        assert any(o[first] in IN_PROGRESS and o[second] == DagsterRunStatus.QUEUED for o in observations)
        # ...and the daemon dequeued the second only after the first had succeeded.
        first_done = _event_time(instance, first, DagsterEventType.RUN_SUCCESS)
        assert _event_time(instance, second, DagsterEventType.RUN_STARTING) >= first_done
        assert _event_time(instance, second, DagsterEventType.RUN_START) >= first_done


def _queue_two_runs_and_watch(instance, processes: list, log: Path, socket: Path) -> list[dict]:
    """Queue two runs, start the daemon, and record every run's status every 0.2 s until all are done."""
    # One code server for the CLI calls, the daemon and the run workers, as in a deployment: each of
    # them would otherwise load the code location on its own (several seconds each on a busy machine).
    server = _cli("dagster", "code-server", "start", "-m", MODULE, "-s", str(socket), log=log)
    processes.append(server)
    deadline = time.monotonic() + 120
    while not socket.exists():  # the proxy binds its socket once the code location has loaded
        assert server.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
        time.sleep(0.2)
    location = ("--grpc-socket", str(socket))

    # Both runs are queued before the daemon starts, so it finds two runs it could launch. The freshness
    # sensor (running by default) is stopped first: its check-only run would join the queue.
    clients = [_cli("dagster", "sensor", "stop", "freshness_checks_sensor", *location, log=log)]
    launch = ["dagster", "job", "launch", *location, "-j", "raw_ingestion", "-o", "raw__household_registry"]
    for name in ("run_a", "run_b"):
        tags = json.dumps({"citybrain/test": name})
        clients.append(_cli(*launch, "--tags", tags, "--config-json", IN_PROCESS, log=log))
    processes.extend(clients)
    for client in clients:
        assert client.wait(120) == 0, log.read_text(errors="replace")[-3000:]
    runs = instance.get_runs()
    assert len(runs) == 2 and {r.status for r in runs} == {DagsterRunStatus.QUEUED}
    assert {r.job_name for r in runs} == {"raw_ingestion"}

    daemon = _cli("dagster-daemon", "run", *location, log=log)
    processes.append(daemon)
    observations = observe_runs(instance, daemon, log, DEADLINE_S, DONE)
    return observations
