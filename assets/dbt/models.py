"""The three dbt steps as Dagster assets, so the graph stays acyclic at the step level: registries and
dimensions, then the daily facts of the run's partition window, then the indicators that read both."""

from datetime import timedelta

from dagster import AssetExecutionContext, BackfillPolicy
from dagster_dbt import DbtCliResource, dbt_assets

from assets.dbt.build import dbt_build
from assets.dbt.translator import CityBrainDbtTranslator
from assets.dbt_project import parsed_manifest
from assets.partitions import daily_partitions
from assets.resources import WarehouseResource
from citybrain.catalog import load_catalog

DAILY_MODELS = "tag:daily"  # incremental models partitioned by day (see macros/partition_window.sql)
INDICATORS = "tag:indicator"  # monthly indicators: downstream of the daily facts, rebuilt whole
# The resource the dbt steps run dbt with: the name of their ``DbtCliResource`` parameter below, the key
# orchestration/definitions.py binds it to, and how a run tells whether it has dbt steps (executors.py).
DBT_RESOURCE_KEY = "dbt"


def _has_models_tagged(tag: str) -> bool:
    return any(
        tag in n.get("tags", []) for n in parsed_manifest()["nodes"].values() if n["resource_type"] == "model"
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
    yield from dbt_build(context, dbt, warehouse, [])


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
    yield from dbt_build(context, dbt, warehouse, [], window=days)


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
    yield from dbt_build(context, dbt, warehouse, [])


def dbt_asset_definitions() -> list:
    """The dbt steps the project has models for (the first always)."""
    definitions = [citybrain_dbt_models]
    if _has_models_tagged("daily"):
        definitions.append(citybrain_dbt_daily_models)
    if _has_models_tagged("indicator"):
        definitions.append(citybrain_dbt_indicators)
    return definitions
