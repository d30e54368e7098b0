"""One ``dbt build`` of a dbt step: under the warehouse lock, with the parse state kept, the classification
checked before any output is yielded, and the outputs carrying row counts and column lineage."""

import uuid

from dagster import AssetExecutionContext
from dagster_dbt import DbtCliResource

from assets.dbt.classification_check import check_classification
from assets.dbt.column_lineage import with_column_lineage
from assets.dbt.parse_state import keep_parse_state, seed_parse_state
from assets.dbt.process_env import set_dbt_environment
from assets.dbt.row_counts import with_row_counts
from assets.dbt.spark import import_spark_pool, sync_parquet_lake
from assets.dbt_project import citybrain_dbt_project
from assets.resources import WarehouseResource
from citybrain import settings


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
        invocation = dbt.cli(
            ["build", "--exclude-resource-type", "unit_test", *args], context=context, target_path=target
        )
        events = list(invocation.stream())
        manifest = invocation.get_artifact("manifest.json")
        check_classification(dbt, manifest)
        # The quality gate and publication read the pool from the DuckDB warehouse: bring Spark's in.
        imported = import_spark_pool(store, manifest, events) if on_spark else None
    keep_parse_state(target, parse_state)
    yield from with_column_lineage(with_row_counts(events, store, imported), manifest)
