"""How dbt nodes become Dagster assets: sources ``raw.<feed>`` map to the asset keys ``raw/<feed>`` that
ingestion produces, so lineage from delivery to model is one graph; models are grouped by their folder."""

from collections.abc import Mapping
from typing import Any

from dagster import AssetKey
from dagster_dbt import DagsterDbtTranslator


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
