"""The dbt models as Dagster assets, downstream of the raw ingestion assets through dbt sources.

Sources ``raw.<feed>`` map to the asset keys ``raw/<feed>`` that ingestion produces, so lineage from
delivery to model is one graph. Models are grouped by their folder (staging, intermediate, pool).
"""

import json
import os
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

import duckdb
from dagster import AssetExecutionContext, AssetKey, Output
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from citybrain.ingest.warehouse import warehouse_lock
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
    path = warehouse.resolved_path()
    # profiles.yml reads the warehouse path from the environment of the dbt process.
    os.environ["CITYBRAIN_WAREHOUSE"] = str(path)
    with warehouse_lock(path):  # one writer at a time: ingestion steps of another run wait for dbt
        events = list(dbt.cli(["build"], context=context).stream())
    yield from with_row_counts(events, path)


@cache
def _manifest_nodes() -> dict:
    return json.loads(citybrain_dbt_project.manifest_path.read_text(encoding="utf-8"))["nodes"]


def with_row_counts(events: list, warehouse_path) -> Iterator:
    """Add ``dagster/row_count`` to each model's output, counted after dbt has released the file.

    (dagster-dbt's ``fetch_row_counts`` keeps a dbt-adapter connection open in this process, which
    then blocks every other DuckDB connection to the warehouse.)
    """
    nodes = _manifest_nodes()
    tables = {
        i: nodes[e.metadata["unique_id"].value]["relation_name"]
        for i, e in enumerate(events)
        if isinstance(e, Output)
        and "unique_id" in e.metadata
        and nodes.get(e.metadata["unique_id"].value, {}).get("relation_name")
    }
    counts = {}
    if tables:
        con = duckdb.connect(str(warehouse_path), read_only=True)
        try:
            for i, table in tables.items():
                counts[i] = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        finally:
            con.close()
    for i, event in enumerate(events):
        yield (
            event.with_metadata({**event.metadata, "dagster/row_count": counts[i]}) if i in counts else event
        )
