"""Launched runs start their steps from a preloaded forkserver (orchestration/executors.py), not by spawn.

The default executor's steps are processes of their own. Spawned, each would import the code location and,
for a check step, Great Expectations again (seconds each, ~30 steps a night); forked from the server that
imported them once, they start with both loaded, and with the garbage-collector settings of
citybrain/process_gc.py (orchestration/step_process_setup.py). A probe job (tests/preload_probe_job.py) with the
project's default executor runs through `dagster job execute`, as a launched run does, against a persistent
instance: both steps run in processes other than the run's, children of one server process, with Great
Expectations imported before the step began although neither step imports it, the collector's raised
threshold and a frozen generation, and the socket of the run's dbt zygote (none in a run of the step that
does not need dbt). The same job with
``start_method: spawn`` in its run config shows the opposite, so the probe can tell the two apart. Then the
project's own ``raw_ingestion`` job runs the same way on a small generated city and succeeds.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus

from citybrain.process_gc import YOUNGEST_GENERATION_THRESHOLD
from citybrain.settings import REPO_ROOT
from orchestration.executors import EXECUTOR_ENV
from tests.demo_lake import demo_lake

BIN = Path(sys.executable).parent
INSTANCE_CONFIG = REPO_ROOT / "orchestration" / "instance" / "dagster.yaml"
DAY = "2026-11-20"


def _execute(args: list[str], run_config: dict | None, directory: Path) -> None:
    command = [str(BIN / "dagster"), "job", "execute", *args]
    if run_config is not None:
        path = directory / "run_config.json"
        path.write_text(json.dumps(run_config), encoding="utf-8")
        command += ["-c", str(path)]
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    env.pop(EXECUTOR_ENV, None)
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]


def _probes(instance: DagsterInstance, run_id: str) -> tuple[int, list[dict]]:
    """The run worker's pid and each probe step's reported metadata."""
    records = instance.get_records_for_run(run_id).records
    run_pid = next(
        r.event_log_entry.dagster_event.pid
        for r in records
        if r.event_log_entry.dagster_event is not None
        and r.event_log_entry.dagster_event.event_type == DagsterEventType.RUN_START
    )
    outputs = []
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is not None and event.event_type == DagsterEventType.STEP_OUTPUT:
            metadata = event.event_specific_data.metadata
            outputs.append({key: value.value for key, value in metadata.items()})
    return run_pid, outputs


def test_steps_fork_from_a_server_that_loaded_the_code_location(tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(INSTANCE_CONFIG, home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("CITYBRAIN_HOME", str(tmp_path / "lake"))
    with DagsterInstance.get():  # the instance's storage, created once before the run's processes
        pass
    job = ["-f", str(REPO_ROOT / "tests" / "preload_probe_job.py"), "-j", "preload_probe"]
    _execute(job, None, tmp_path)
    spawn = {"execution": {"config": {"multiprocess": {"start_method": {"spawn": {}}}}}}
    _execute(job, spawn, tmp_path)
    _execute([*job, "--op-selection", "first_probe"], None, tmp_path)  # the step without dbt, alone

    with DagsterInstance.get() as instance:
        runs = instance.get_runs()
        (preloaded_run,) = [run for run in runs if not run.run_config and not run.op_selection]
        (spawned_run,) = [run for run in runs if run.run_config.get("execution")]
        (without_dbt_run,) = [run for run in runs if run.op_selection]
        run_pid, preloaded = _probes(instance, preloaded_run.run_id)
        spawn_pid, spawned = _probes(instance, spawned_run.run_id)
        _, (without_dbt_probe,) = _probes(instance, without_dbt_run.run_id)
    assert len(preloaded) == len(spawned) == 2
    assert all(p["pid"] != run_pid for p in preloaded)
    assert all(p["great_expectations_loaded"] for p in preloaded)
    (server,) = {p["parent_pid"] for p in preloaded}
    assert server != run_pid  # the forkserver, not the run worker
    assert all(p["gc_youngest_threshold"] == YOUNGEST_GENERATION_THRESHOLD for p in preloaded)
    assert all(p["gc_frozen_objects"] > 100_000 for p in preloaded)  # the code location and GX, frozen
    # Every step's dbt would run in the run's dbt zygote, which ended with the run worker.
    (zygote_socket,) = {p["dbt_zygote"] for p in preloaded}
    assert zygote_socket and zygote_socket != spawned[0]["dbt_zygote"]
    deadline = time.monotonic() + 30
    while Path(zygote_socket).parent.exists():
        assert time.monotonic() < deadline, "the run's dbt zygote outlived its run worker"
        time.sleep(0.2)
    # A run without dbt steps does not start a zygote (nor import dbt for one).
    assert without_dbt_probe["dbt_zygote"] == ""
    # Spawned, a step begins without what it does not import itself, and with Python's own collector.
    assert not any(p["great_expectations_loaded"] for p in spawned)
    assert not any(p["gc_youngest_threshold"] == YOUNGEST_GENERATION_THRESHOLD for p in spawned)
    assert not any(p["gc_frozen_objects"] for p in spawned)
    assert all(p["parent_pid"] == spawn_pid for p in spawned)


def test_project_job_runs_on_the_preloaded_executor(tmp_path, catalog):
    home = tmp_path / "lake"
    (home / "dagster_home").mkdir(parents=True)
    with demo_lake(home, ["330102"], [DAY], residents=300):
        shutil.copyfile(INSTANCE_CONFIG, home / "dagster_home" / "dagster.yaml")
        with DagsterInstance.get():
            pass
        tags = {"dagster/asset_partition_range_start": DAY, "dagster/asset_partition_range_end": DAY}
        _execute(
            ["-m", "orchestration.definitions", "-j", "raw_ingestion", "--tags", json.dumps(tags)],
            None,
            tmp_path,
        )
        with DagsterInstance.get() as instance:
            (run,) = instance.get_runs()
            assert run.status == DagsterRunStatus.SUCCESS
            steps = {
                r.event_log_entry.dagster_event.step_key
                for r in instance.get_records_for_run(run.run_id).records
                if r.event_log_entry.dagster_event is not None
                and r.event_log_entry.dagster_event.event_type == DagsterEventType.STEP_SUCCESS
            }
    assert {f"raw__{feed.id}" for feed in catalog.feeds} <= steps


def test_only_the_project_jobs_with_dbt_steps_start_a_dbt_zygote():
    from orchestration.definitions import defs
    from orchestration.executors import runs_dbt

    assert runs_dbt(defs.resolve_job_def("city_nightly"))
    assert not runs_dbt(defs.resolve_job_def("raw_ingestion"))
    # One ingestion asset materialised from the UI: the implicit asset job, subset to that asset.
    everything = defs.resolve_implicit_global_asset_job_def()
    assert runs_dbt(everything)
    feed = next(key for key in everything.asset_layer.executable_asset_keys if key.path[0] == "raw")
    assert not runs_dbt(everything.get_subset(asset_selection={feed}))
