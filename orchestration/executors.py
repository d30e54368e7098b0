"""Which executor runs the steps of a launched run: Dagster's default, or a Dask cluster.

Why Dask: the ingestion steps are CPU-bound Python (decoding, parsing and validating every delivered
record before the rows are written), one step per feed. Dagster's default executor runs them as
subprocesses of the run worker, so one run never uses more than the run worker's machine. The Dask
executor (``dagster-dask``) submits every step as a task to a Dask scheduler instead, which spreads them
over the worker processes of a cluster, on as many machines as it has. Each step runs in a Dask worker
process (it loads the code location there and writes its events to the instance); the run worker only
orchestrates and waits. DuckDB's one-writer rule is unaffected: a step writes the warehouse only under
its exclusive file lock (citybrain.ingest.warehouse), so parallel steps queue just for that short write,
wherever they run.

Chosen by the environment of the process that loads the code location (code server, run worker, CLI):

* ``CITYBRAIN_EXECUTOR`` unset, empty or ``default``: Dagster's default executor (steps in subprocesses
  of the run worker, or in process with ``execution: config: in_process: {}``), its subprocesses forked
  from a server that has loaded the code location once (``preloaded_default_executor``);
* ``CITYBRAIN_EXECUTOR=dask`` with ``CITYBRAIN_DASK_SCHEDULER=tcp://host:8786``: an existing cluster
  (``dask scheduler`` / ``dask worker``); its workers need the project installed, the same
  ``CITYBRAIN_*`` environment and the lake's files (landing zone, warehouse) at the same paths;
* ``CITYBRAIN_EXECUTOR=dask`` without a scheduler: a ``distributed.LocalCluster`` per run on the run
  worker's machine, ``CITYBRAIN_DASK_WORKERS`` worker processes (default: the CPU count), one thread each.

The run config can still override the cluster (``execution: config: cluster: ...``, dagster-dask's
schema, ``existing`` and ``local`` only). ``citybrain run`` executes in process and is not affected.

dagster-dask is imported only when a run starts on Dask: it imports dask.dataframe, pandas, numpy and
pyarrow (3 s), which loading the code location must not pay (tests/test_definitions_load.py).
"""

from __future__ import annotations

import os

from dagster import (
    ExecutorDefinition,
    Field,
    JobDefinition,
    Permissive,
    Selector,
    StringSource,
    executor,
    multiple_process_executor_requirements,
)

EXECUTOR_ENV = "CITYBRAIN_EXECUTOR"
DASK_SCHEDULER_ENV = "CITYBRAIN_DASK_SCHEDULER"
DASK_WORKERS_ENV = "CITYBRAIN_DASK_WORKERS"
CHOICES = ("default", "dask")


# What every step process of a run needs before it starts: the code location (Dagster, dagster-dbt and the
# parsed manifest, the catalog) and Great Expectations, which the check steps import. A run in process
# (`citybrain run`) imports them in a background thread while its first steps run (warm_imports.py).
PRELOADED_MODULES = ["orchestration.definitions", "great_expectations"]
# Imported by the forkserver after PRELOADED_MODULES, never warmed in a run's own process: it sets the
# garbage collector of the forked step processes (step_process_setup.py).
STEP_PROCESS_SETUP = "orchestration.step_process_setup"


def selected_executor() -> ExecutorDefinition:
    """The executor the environment asks for."""
    choice = os.environ.get(EXECUTOR_ENV, "").strip().lower() or "default"
    if choice not in CHOICES:
        raise ValueError(f"{EXECUTOR_ENV}={choice!r}: expected one of {', '.join(CHOICES)}")
    if choice == "default":
        return preloaded_default_executor()
    return dask_executor(default_dask_cluster())


def preloaded_default_executor() -> ExecutorDefinition:
    """Dagster's default executor (``multi_or_in_process_executor``, its config and behaviour) whose default
    start method is a forkserver that has imported ``PRELOADED_MODULES``, instead of ``spawn``.

    With ``spawn`` every step starts a new interpreter that imports the code location again: about 4.5 s
    of CPU (bench/definitions_load.py), and 2 s more for Great Expectations in a check step, for each of
    the nightly's ~30 steps on a machine of two cores. Forked from the preloaded server, a step starts
    with all of it imported, and with the collector settings of ``citybrain run`` (``STEP_PROCESS_SETUP``,
    imported last). A run config that sets ``start_method`` or ``in_process`` still decides. The run's dbt
    steps run in a dbt zygote started here, as in ``citybrain run``, when the run has any (``runs_dbt``)."""
    from dagster import multi_or_in_process_executor

    preload = [*PRELOADED_MODULES, STEP_PROCESS_SETUP]
    default = {"multiprocess": {"start_method": {"forkserver": {"preload_modules": preload}}}}

    @executor(
        name="multi_or_in_process_executor",
        config_schema=Field(multi_or_in_process_executor.config_schema.config_type, default_value=default),
        requirements=multi_or_in_process_executor.get_requirements,
    )
    def _preloaded(init_context):
        from citybrain.scale import dbt_zygote

        # dbt imported once for the run's dbt steps (citybrain/scale/dbt_zygote.py): the zygote's socket is
        # in this run worker's environment before the forkserver starts, so every step process has it; the
        # zygote ends with this process. A run without dbt steps (the raw ingestion job, one feed
        # materialised from the UI) does not pay for importing dbt.
        if runs_dbt(init_context.job.get_definition()):
            dbt_zygote.start_for_this_process()
        return multi_or_in_process_executor.executor_creation_fn(init_context)

    return _preloaded


def runs_dbt(job_def: JobDefinition) -> bool:
    """Whether any op of ``job_def`` (a run's job, already subset to its selection) runs dbt: the dbt
    steps, and only they, require the dbt resource (assets/dbt/models.py)."""
    from assets.dbt.models import DBT_RESOURCE_KEY

    return any(DBT_RESOURCE_KEY in op.required_resource_keys for op in job_def.graph.iterate_op_defs())


def default_dask_cluster() -> dict:
    """dagster-dask's ``cluster`` config from the environment: the existing scheduler, else a local one."""
    address = os.environ.get(DASK_SCHEDULER_ENV, "").strip()
    if address:
        return {"existing": {"address": address}}
    workers = int(os.environ.get(DASK_WORKERS_ENV) or os.cpu_count() or 1)
    # One thread per worker: Dagster's step execution is not thread-safe (dagster-dask enforces it for
    # local clusters too). Loopback only and no dashboard: nothing listens on the network for a run.
    return {
        "local": {
            "n_workers": workers,
            "threads_per_worker": 1,
            "processes": True,
            "host": "127.0.0.1",
            "dashboard_address": None,
        }
    }


def dask_executor(default_cluster: dict) -> ExecutorDefinition:
    """``dagster_dask.dask_executor`` with ``default_cluster`` as its default config, without importing
    dagster-dask before a run starts (its executor class is built when the run begins)."""

    @executor(
        name="dask",
        requirements=multiple_process_executor_requirements(),
        config_schema={
            "cluster": Field(
                Selector(
                    {
                        "existing": Field(
                            {"address": StringSource}, description="Connect to an existing scheduler."
                        ),
                        "local": Field(
                            Permissive(), description="distributed.LocalCluster keyword arguments."
                        ),
                    }
                ),
                default_value=default_cluster,
            )
        },
    )
    def _dask(init_context):
        from dagster_dask.executor import DaskExecutor

        ((cluster_type, cluster_configuration),) = init_context.executor_config["cluster"].items()
        return DaskExecutor(cluster_type, cluster_configuration)

    return _dask
