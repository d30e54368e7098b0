"""One ``dbt build`` of a dbt step: under the warehouse lock, with the parse state kept, the classification
checked before any output is yielded, and the outputs carrying row counts and column lineage."""

import uuid

from dagster import AssetExecutionContext, Failure
from dagster_dbt import DbtCliResource

from assets.dbt.classification_check import check_classification
from assets.dbt.column_lineage import with_column_lineage
from assets.dbt.failed_tests import outputs_not_built, soften_failed_tests
from assets.dbt.parse_state import keep_parse_state, seed_parse_state
from assets.dbt.process_env import set_dbt_environment
from assets.dbt.row_counts import with_row_counts
from assets.dbt.spark import import_spark_pool, sync_parquet_lake
from assets.dbt.target_dirs import prune_step_targets
from assets.dbt_project import citybrain_dbt_project
from assets.resources import WarehouseResource
from citybrain import settings
from citybrain.quality import dbt_tests


def dbt_build(
    context: AssetExecutionContext,
    dbt: DbtCliResource,
    warehouse: WarehouseResource,
    args: list[str],
    window: tuple[str, str] | None = None,
):
    """``dbt build`` with ``args``; ``window``: the run's first and last day for the daily models."""
    store = warehouse.warehouse()
    path = store.path
    set_dbt_environment(path, window)
    # dagster-dbt's naming (<step>-<run>-<unique>), but chosen here to seed it with the parse state.
    name = f"{context.op_execution_context.op.name}-{context.run.run_id[:7]}-{uuid.uuid4().hex[:7]}"
    target = citybrain_dbt_project.project_dir / "target" / name
    parse_state = seed_parse_state(target, path, args)
    on_spark = settings.dbt_target().startswith("spark")
    with store.lock():  # one writer at a time: ingestion steps of another run wait for dbt
        if settings.raw_parquet_enabled():  # Spark reads the sources from the Parquet lake: in step first
            sync_parquet_lake(store)
        # dbt unit tests check the macros on fixed inputs: CI runs them (tests/test_masking.py), not the nightly.
        threads = [] if on_spark else ["--threads", str(settings.dbt_threads(_file_bytes(path)))]
        invocation = dbt.cli(
            ["build", "--exclude-resource-type", "unit_test", *args, *threads],
            context=context,
            target_path=target,
            raise_on_error=False,  # failed tests hold tables back (assets/dbt/failed_tests.py)
        )
        events = list(soften_failed_tests(invocation.stream()))
        exit_code = invocation.process.returncode  # 0: all passed, 1: some node failed, 2: dbt itself did
        if exit_code not in (0, 1):
            raise Failure(description=f"dbt failed (exit code {exit_code}): see the step's log")
        manifest = invocation.get_artifact("manifest.json")
        run_results = invocation.get_artifact("run_results.json")
        errors = dbt_tests.build_errors(run_results)
        if errors:  # a model that cannot be built is a defect of code or platform, not of a delivery
            raise Failure(description="dbt could not build: " + "; ".join(errors))
        outcomes = dbt_tests.outcomes_from_run(run_results, manifest)
        dbt_tests.record(store, context.run.run_id, outcomes, locked=True)
        check_classification(dbt, manifest)
        # The quality gate and publication read the pool from the DuckDB warehouse: bring Spark's in.
        imported = import_spark_pool(store, manifest, events) if on_spark else None
    keep_parse_state(target, parse_state)
    prune_step_targets(target.parent)
    failed = sorted({o.test for o in outcomes if o.blocks})
    if failed:
        context.log.warning(
            f"dbt tests failed (the tables built from them are held back): {', '.join(failed)}"
        )
        events += outputs_not_built(context, events, failed)
    yield from with_column_lineage(with_row_counts(events, store, imported), manifest)


def _file_bytes(path) -> int:
    """The warehouse file's size (0 before its first write): what decides how many models dbt builds at once."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
