"""The dbt models as Dagster assets, downstream of the raw ingestion assets through dbt sources.

Sources ``raw.<feed>`` map to the asset keys ``raw/<feed>`` that ingestion produces, so lineage from
delivery to model is one graph. Models are grouped by their folder (staging, intermediate, pool).
"""

import os
from collections.abc import Mapping
from typing import Any

from dagster import AssetExecutionContext, AssetKey
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from orchestration.dbt_project import citybrain_dbt_project
from orchestration.resources import WarehouseResource


class CityBrainDbtTranslator(DagsterDbtTranslator):
    """One place for how dbt nodes become Dagster assets."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return AssetKey([dbt_resource_props["source_name"], dbt_resource_props["name"]])
        return AssetKey([dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        fqn = dbt_resource_props.get("fqn", [])
        return fqn[1] if len(fqn) > 2 else "dbt"

    def get_owners(self, dbt_resource_props: Mapping[str, Any]):
        return ["team:data_engineering"]


@dbt_assets(manifest=citybrain_dbt_project.manifest_path, dagster_dbt_translator=CityBrainDbtTranslator())
def citybrain_dbt_models(context: AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource):
    # profiles.yml reads the warehouse path from the environment of the dbt process.
    os.environ["CITYBRAIN_WAREHOUSE"] = str(warehouse.resolved_path())
    yield from dbt.cli(["build"], context=context).stream()
