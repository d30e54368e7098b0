"""The dbt models as Dagster assets, downstream of the raw ingestion assets through dbt sources.

Sources ``raw.<feed>`` map to the asset keys ``raw/<feed>`` that ingestion produces, so lineage from
delivery to model is one graph. Models are grouped by their folder (staging, intermediate, pool).
"""

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext, AssetKey, BackfillPolicy, Failure, Output
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from assets.dbt_project import citybrain_dbt_project, parsed_manifest
from assets.partitions import daily_partitions
from assets.resources import WarehouseResource
from citybrain import settings
from citybrain.catalog import load_catalog
from citybrain.governance import classification
from citybrain.ingest.warehouse import warehouse_lock
from citybrain.lineage.columns import COMPILED_STORE
from citybrain.settings import duckdb_config


class CityBrainDbtTranslator(DagsterDbtTranslator):
    """One place for how dbt nodes become Dagster assets."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return AssetKey([dbt_resource_props["source_name"], dbt_resource_props["name"]])
        return AssetKey([dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        """The layer: the model's folder (staging, intermediate, pool, ...); every snapshot in "snapshots"
        (their fqn names the file, which made one group per snapshot)."""
        if dbt_resource_props.get("resource_type") == "snapshot":
            return "snapshots"
        fqn = dbt_resource_props.get("fqn", [])
        return fqn[1] if len(fqn) > 2 else "dbt"

    def get_owners(self, dbt_resource_props: Mapping[str, Any]):
        return ["team:data_engineering"]


DAILY_MODELS = "tag:daily"  # incremental models partitioned by day (see macros/partition_window.sql)
WINDOW_ENV = ("CITYBRAIN_MIN_DATE", "CITYBRAIN_MAX_DATE")  # the run's days, read by the run_window macro
INDICATORS = "tag:indicator"  # monthly indicators: downstream of the daily facts, rebuilt whole


def _has_models_tagged(tag: str) -> bool:
    return any(
        tag in n.get("tags", []) for n in parsed_manifest()["nodes"].values() if n["resource_type"] == "model"
    )


def _build(
    context: AssetExecutionContext,
    dbt: DbtCliResource,
    warehouse: WarehouseResource,
    args: list[str],
    window: tuple[str, str] | None = None,
):
    """``dbt build`` with ``args``; ``window``: the run's first and last day for the daily models."""
    path = warehouse.resolved_path()
    # profiles.yml reads the warehouse path from the environment of the dbt process, and the run_window
    # macro the days (read at execution only, so the parse state stays valid from night to night).
    os.environ["CITYBRAIN_WAREHOUSE"] = str(path)
    for name, value in zip(WINDOW_ENV, window or (None, None), strict=True):
        if value:
            os.environ[name] = value
        else:
            os.environ.pop(name, None)
    # dagster-dbt's naming (<step>-<run>-<unique>), but chosen here to seed it with the parse state.
    name = f"{context.op_execution_context.op.name}-{context.run.run_id[:7]}-{uuid.uuid4().hex[:7]}"
    target = citybrain_dbt_project.project_dir / "target" / name
    parse_state = _seed_parse_state(target, path, args)
    on_spark = settings.dbt_target().startswith("spark")
    with warehouse_lock(path):  # one writer at a time: ingestion steps of another run wait for dbt
        if settings.raw_parquet_enabled():  # Spark reads the sources from the Parquet lake: in step first
            sync_parquet_lake(path)
        # dbt unit tests check the macros on fixed inputs: CI runs them (tests/test_masking.py), not the nightly.
        invocation = dbt.cli(
            ["build", "--exclude-resource-type", "unit_test", *args], context=context, target_path=target
        )
        events = list(invocation.stream())
        manifest = invocation.get_artifact("manifest.json")
        check_classification(dbt, manifest)
        # The quality gate and publication read the pool from the DuckDB warehouse: bring Spark's in.
        imported = import_spark_pool(path, manifest, events) if on_spark else None
    _keep_parse_state(target, parse_state)
    yield from with_column_lineage(with_row_counts(events, path, imported), manifest)


def with_column_lineage(events, manifest: dict) -> Iterator:
    """Add ``dagster/column_lineage`` (raw feed columns each pool column is derived from, unmasked) to the
    outputs of the pool models built: the Dagster UI shows it on the asset's columns. Read from the compiled
    SQL the classification check has just stored (citybrain/lineage/columns.py)."""
    from dagster import TableColumnDep, TableColumnLineage

    from citybrain.lineage.columns import column_origins

    events = list(events)
    built = [
        e.metadata["unique_id"].value for e in events if isinstance(e, Output) and "unique_id" in e.metadata
    ]
    store = citybrain_dbt_project.project_dir / "target" / GOVERNANCE_STORE
    origins = column_origins(manifest, load_catalog(), store, only=built)
    nodes = manifest.get("nodes", {})
    for event in events:
        unique_id = (
            event.metadata["unique_id"].value
            if isinstance(event, Output) and "unique_id" in event.metadata
            else None
        )
        node = nodes.get(unique_id or "", {})
        columns = origins.get(node.get("alias") or node.get("name") or "")
        if columns:
            lineage = TableColumnLineage(
                deps_by_column={
                    column: [
                        TableColumnDep(asset_key=AssetKey(relation.split(".", 1)), column_name=source)
                        for relation, source in sources
                    ]
                    for column, sources in columns.items()
                    if sources
                }
            )
            event = event.with_metadata({**event.metadata, "dagster/column_lineage": lineage})
        yield event


def sync_parquet_lake(warehouse_path: Path) -> None:
    import duckdb

    from citybrain.lake import parquet_lake

    con = duckdb.connect(str(warehouse_path), config=duckdb_config())
    try:
        parquet_lake.sync(con, settings.lake_dir())
    finally:
        con.close()


def import_spark_pool(warehouse_path: Path, manifest: dict, events: list) -> dict[str, int]:
    """Copy the pool tables this dbt step built on Spark into the DuckDB warehouse (citybrain/scale/spark_pool.py);
    rows per unique id. Only the pool: it is all the quality gate, publication and resource catalog read
    (staging, intermediate and snapshots stay in Spark)."""
    import duckdb

    from citybrain.scale import spark_pool

    built = [
        e.metadata["unique_id"].value for e in events if isinstance(e, Output) and "unique_id" in e.metadata
    ]
    pool = [t for t in spark_pool.built_tables(manifest, built) if t["schema"] == classification.POOL_SCHEMA]
    con = duckdb.connect(str(warehouse_path), config=duckdb_config())
    try:
        return spark_pool.import_tables(con, pool)
    finally:
        con.close()


PARSE_STATE_DIR = "partial_parse_by_profile"  # under dbt_project/target
PARSE_STATES_KEPT = 8  # warehouses (lakes, test lakes) whose parse state is kept, most recent first


def _seed_parse_state(target: Path, warehouse_path, args: list[str]) -> Path:
    """dbt re-parses the whole project (seconds per step) unless the partial_parse.msgpack it finds was
    written with the same profile (the warehouse path is in it) and the same --vars. dagster-dbt copies
    the project's own file, written by `dbt parse` for the default warehouse, so every step of every
    run re-parsed. Keep the parse state per warehouse and vars instead: the indicators step reuses the
    first dbt step's, the next night's first step the indicators'. dbt still checks the files, profile
    and vars of the state it is given, so a stale one only means a full parse, as before."""
    key = hashlib.sha256(f"{warehouse_path}\0{json.dumps(args)}".encode()).hexdigest()[:16]
    state = citybrain_dbt_project.project_dir / "target" / PARSE_STATE_DIR / f"{key}.msgpack"
    if state.exists():
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(state, target / "partial_parse.msgpack")
    return state


def _keep_parse_state(target: Path, state: Path) -> None:
    written = target / "partial_parse.msgpack"
    if written.exists():
        state.parent.mkdir(parents=True, exist_ok=True)
        partial = state.with_name(f"{state.name}.{uuid.uuid4().hex[:8]}")
        shutil.copyfile(written, partial)
        os.replace(partial, state)  # atomic: another run may be reading it
        states = sorted(state.parent.glob("*.msgpack"), key=_mtime, reverse=True)
        for old in states[PARSE_STATES_KEPT:]:
            old.unlink(missing_ok=True)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:  # pruned by another run meanwhile
        return 0.0


GOVERNANCE_STORE = COMPILED_STORE  # compiled SQL of earlier steps, for the lineage check (and the catalog)


def check_classification(dbt: DbtCliResource, manifest: dict) -> None:
    """Fail the step when the pool just built breaks a classification rule (docs/GOVERNANCE.md): raised
    before the step's outputs are yielded, so nothing downstream (quality gate, publication) runs."""

    def compile_missing(names: list[str]) -> dict:
        return dbt.cli(["compile", "--select", *names]).wait().get_artifact("manifest.json")

    store = citybrain_dbt_project.project_dir / "target" / GOVERNANCE_STORE
    violations = classification.check_built(manifest, load_catalog(), store, compile_missing)
    if violations:
        raise Failure(
            description=classification.format_violations(violations),
            metadata={"violations": [str(v) for v in violations]},
        )


@dbt_assets(
    manifest=parsed_manifest(),  # the parsed dict: the same manifest, parsed once (assets/dbt_project.py)
    dagster_dbt_translator=CityBrainDbtTranslator(),
    exclude=f"{DAILY_MODELS} {INDICATORS}",
    name="citybrain_dbt_models",
)
def citybrain_dbt_models(context: AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource):
    """Staging, dimensions, registries, snapshots and the quality scorecards: rebuilt whole (they are
    small or need all days). Dagster starts this step after the raw feeds' blocking checks, so the
    scorecards count this run's raw expectations."""
    yield from _build(context, dbt, warehouse, [])


def dbt_asset_definitions() -> list:
    """Three dbt steps, so the graph stays acyclic at the step level: registries and dimensions, then the
    daily facts of the run's partition window, then the indicators that read both."""
    definitions = [citybrain_dbt_models]
    if _has_models_tagged("daily"):
        definitions.append(citybrain_dbt_daily_models)
    if _has_models_tagged("indicator"):
        definitions.append(citybrain_dbt_indicators)
    return definitions


@dbt_assets(
    manifest=parsed_manifest(),
    dagster_dbt_translator=CityBrainDbtTranslator(),
    select=DAILY_MODELS if _has_models_tagged("daily") else "fqn:*",
    partitions_def=daily_partitions(load_catalog()),
    backfill_policy=BackfillPolicy.single_run(),
    name="citybrain_dbt_daily_models",
)
def citybrain_dbt_daily_models(
    context: AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource
):
    """Daily facts: one dbt invocation for the run's whole partition window (a backfill is one run)."""
    window = context.partition_time_window
    last_day = (window.end - timedelta(days=1)).date()
    days = (window.start.date().isoformat(), last_day.isoformat())
    yield from _build(context, dbt, warehouse, [], window=days)


def with_row_counts(events: list, warehouse_path, counted: Mapping[str, int] | None = None) -> Iterator:
    """Add ``dagster/row_count`` to each table's output, counted after dbt has released the file.

    (dagster-dbt's ``fetch_row_counts`` keeps a dbt-adapter connection open in this process, which
    then blocks every other DuckDB connection to the warehouse.) Views are not counted: that would
    run them. ``counted``: rows per unique id already known (the pool imported from Spark); then only
    those tables get a count.
    """
    nodes = parsed_manifest()["nodes"]
    tables = {}
    counts = {}
    for i, event in enumerate(events):
        if isinstance(event, Output) and "unique_id" in event.metadata:
            unique_id = event.metadata["unique_id"].value
            node = nodes.get(unique_id, {})
            if counted is not None:
                if unique_id in counted:
                    counts[i] = counted[unique_id]
            elif node.get("relation_name") and node.get("config", {}).get("materialized") != "view":
                tables[i] = node["relation_name"]
    if tables:
        import duckdb

        con = duckdb.connect(str(warehouse_path), read_only=True, config=duckdb_config())
        try:
            for i, table in tables.items():
                counts[i] = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        finally:
            con.close()
    for i, event in enumerate(events):
        yield (
            event.with_metadata({**event.metadata, "dagster/row_count": counts[i]}) if i in counts else event
        )


@dbt_assets(
    manifest=parsed_manifest(),
    dagster_dbt_translator=CityBrainDbtTranslator(),
    select=INDICATORS if _has_models_tagged("indicator") else "fqn:*",
    name="citybrain_dbt_indicators",
)
def citybrain_dbt_indicators(
    context: AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource
):
    """Indicators per district and month, from the dimensions and all days of the facts."""
    yield from _build(context, dbt, warehouse, [])
