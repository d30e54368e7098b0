"""Two lakes share one PostgreSQL-backed instance: runs of one lake queue, the other lake's run does not wait.

End to end with the real pieces, as a shared deployment runs them: a throwaway PostgreSQL database
(127.0.0.1:5432, trust auth) as the storage of a DAGSTER_HOME with the production instance config
(orchestration/instance/dagster.postgres.yaml: queued run coordinator, one run at a time per
``citybrain/lake`` tag value); two lakes (two CITYBRAIN_HOMEs), each served by its own code location
(`dagster code-server` on orchestration.definitions with that lake's environment) in one workspace; two
runs of lake A's `raw_ingestion` job and one of lake B's submitted with `dagster job launch`, carrying no
lake tag of their own (the job's tag is all they have); one real `dagster-daemon run` that dequeues them.

The test watches the run storage meanwhile and checks that A's two runs never overlapped, that B's run
overlapped one of A's (the limit is per lake, not global), and that every run carried its lake's tag.
Skipped only when the PostgreSQL server is unreachable.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus

from citybrain.settings import REPO_ROOT
from orchestration.jobs import LAKE_ID_ENV, LAKE_TAG
from tests.services import PG, observe_runs, stop_process_group, throwaway_pg_database
from tests.test_ingest_files import REGISTRY_ROW, registry_csv, write

pytestmark = [pytest.mark.server, pytest.mark.slow]

BIN = Path(sys.executable).parent
INSTANCE_CONFIG = REPO_ROOT / "orchestration" / "instance" / "dagster.postgres.yaml"
MODULE = "orchestration.definitions"
IN_PROGRESS = {DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING}
DONE = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
DEADLINE_S = 240
RUN_TAG = "citybrain/test"
# Steps in the run worker, not one more subprocess per step: the queue does not depend on the executor.
IN_PROCESS = json.dumps({"execution": {"config": {"in_process": {}}}})
LAKES = ("lake_a", "lake_b")


@pytest.fixture
def pg_database():
    with throwaway_pg_database("citybrain_lakes") as name:
        yield name


def expected_lake_id(home: Path) -> str:
    """What orchestration.jobs.lake_id() derives from CITYBRAIN_HOME, computed independently."""
    home = home.resolve()
    return f"{home.name}-{hashlib.sha256(str(home).encode()).hexdigest()[:8]}"


def _cli(*args: str, log: Path, env: dict | None = None) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(BIN / args[0]), *args[1:]],
            cwd=REPO_ROOT,
            env={**(env or os.environ), "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the code server's run workers
        )


def _interval(instance: DagsterInstance, run_id: str) -> tuple[float, float]:
    """From the daemon dequeuing the run (RUN_STARTING) to its end: the time it held its lake's slot."""

    def first(event_type: DagsterEventType) -> float:
        records = instance.get_records_for_run(run_id, of_type=event_type).records
        assert records, f"run {run_id}: no {event_type.value} event"
        return records[0].event_log_entry.timestamp

    return first(DagsterEventType.RUN_STARTING), first(DagsterEventType.RUN_SUCCESS)


def test_runs_queue_per_lake_and_lakes_run_side_by_side(tmp_path, catalog, pg_database, monkeypatch):
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    shutil.copyfile(INSTANCE_CONFIG, dagster_home / "dagster.yaml")
    pg_env = {
        "DAGSTER_HOME": str(dagster_home),
        "DAGSTER_PG_HOST": PG["host"],
        "DAGSTER_PG_PORT": str(PG["port"]),
        "DAGSTER_PG_USER": PG["user"],
        "DAGSTER_PG_PASSWORD": "",
        "DAGSTER_PG_DB": pg_database,
    }
    for var, value in pg_env.items():
        monkeypatch.setenv(var, value)
    for var in (
        "CITYBRAIN_HOME",
        LAKE_ID_ENV,
        "CITYBRAIN_LANDING",
        "CITYBRAIN_WAREHOUSE",
        "CITYBRAIN_CATALOG",
    ):
        monkeypatch.delenv(var, raising=False)

    # Two lakes, each with one small delivery of one feed.
    homes = {name: tmp_path / name for name in LAKES}
    rows = [REGISTRY_ROW.format(id="330102199001011234", n=1), REGISTRY_ROW.format(id="", n=2)]
    for home in homes.values():
        (home / "landing").mkdir(parents=True)
        write(
            home / "landing", "public_security/household_registry_20261120.csv", registry_csv(rows, catalog)
        )

    log = tmp_path / "dagster.log"
    processes: list[subprocess.Popen] = []
    # The instance's tables are created here, once: processes starting on an empty database at the same
    # moment would race to create them.
    with DagsterInstance.get() as instance:
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
        assert {"key": LAKE_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in limits
        try:
            observations, run_lakes = _launch_and_watch(instance, homes, processes, log, tmp_path)
        finally:
            for process in reversed(processes):  # daemon before the code servers
                stop_process_group(process)
        tail = log.read_text(errors="replace")[-3000:]
        final = observations[-1]
        assert set(final.values()) == {DagsterRunStatus.SUCCESS}, f"{final}\n{tail}"
        runs = {run.run_id: run for run in instance.get_runs()}
        intervals = {run_id: _interval(instance, run_id) for run_id in runs}

    # Every run carries its lake's tag, from the job definition of that lake's code location.
    for run_id, run in runs.items():
        assert run.tags[LAKE_TAG] == expected_lake_id(homes[run_lakes[run_id]]), run.tags
    lake_a = sorted((r for r in runs if run_lakes[r] == "lake_a"), key=lambda r: intervals[r][0])
    (lake_b,) = [r for r in runs if run_lakes[r] == "lake_b"]
    assert len(lake_a) == 2

    # Lake A: never two runs in progress at any observation; the second was dequeued after the first ended.
    assert not [o for o in observations if sum(o[r] in IN_PROGRESS for r in lake_a) > 1]
    first, second = lake_a
    assert intervals[second][0] >= intervals[first][1], intervals
    assert any(o[first] in IN_PROGRESS and o[second] == DagsterRunStatus.QUEUED for o in observations)
    # Lake B did not wait for lake A: its run was in progress beside one of A's.
    assert any(o[lake_b] in IN_PROGRESS and o[first] in IN_PROGRESS for o in observations), observations
    b_start, b_end = intervals[lake_b]
    assert b_start < intervals[first][1] and intervals[first][0] < b_end, intervals
    a_span = intervals[second][1] - intervals[first][0]
    print(
        f"lake A: 2 runs one after the other in {a_span:.1f} s; lake B's run {b_end - b_start:.1f} s, "
        f"started {b_start - intervals[first][0]:+.1f} s after A's first"
    )


def _launch_and_watch(instance, homes: dict, processes: list, log: Path, tmp_path: Path):
    """One code server per lake, the runs queued through them, then the daemon; every run's status is
    recorded every 0.2 s until all are done. Returns the observations and each run's lake."""
    sockets = {name: tmp_path / f"{name}.sock" for name in homes}
    for name, home in homes.items():
        env = {**os.environ, "CITYBRAIN_HOME": str(home)}
        processes.append(
            _cli("dagster", "code-server", "start", "-m", MODULE, "-s", str(sockets[name]), log=log, env=env)
        )
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        "load_from:\n"
        + "".join(
            f"  - grpc_server:\n      socket: {sockets[name]}\n      location_name: {name}\n"
            for name in homes
        )
    )
    deadline = time.monotonic() + 180
    while not all(s.exists() for s in sockets.values()):  # bound once the code location has loaded
        assert all(p.poll() is None for p in processes), log.read_text(errors="replace")[-3000:]
        assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
        time.sleep(0.2)

    # Everything is queued before the daemon starts, so it finds all three runs launchable at once. The
    # freshness sensors (running by default) are stopped first: their check runs would join the queues.
    ws = ("-w", str(workspace))
    clients = []
    for name in homes:
        clients.append(_cli("dagster", "sensor", "stop", "freshness_checks_sensor", *ws, "-l", name, log=log))
    launch = ["dagster", "job", "launch", *ws, "-j", "raw_ingestion", "-o", "raw__household_registry"]
    for name, label in (("lake_a", "a1"), ("lake_a", "a2"), ("lake_b", "b1")):
        tags = json.dumps({RUN_TAG: label})
        clients.append(_cli(*launch, "-l", name, "--tags", tags, "--config-json", IN_PROCESS, log=log))
    processes.extend(clients)
    for client in clients:
        assert client.wait(180) == 0, log.read_text(errors="replace")[-3000:]
    runs = instance.get_runs()
    assert len(runs) == 3 and {r.status for r in runs} == {DagsterRunStatus.QUEUED}
    run_lakes = {r.run_id: "lake_b" if r.tags[RUN_TAG] == "b1" else "lake_a" for r in runs}

    daemon = _cli("dagster-daemon", "run", *ws, log=log)
    processes.append(daemon)
    observations = observe_runs(instance, daemon, log, DEADLINE_S, DONE)
    return observations, run_lakes
