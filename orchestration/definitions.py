"""The City Brain Lake code location. Kept small: it loads the per-concern modules and wires resources."""

from __future__ import annotations

from dagster import Definitions

from assets.ingestion import build_ingestion_assets
from citybrain.catalog import load_catalog
from orchestration.jobs import city_nightly, raw_ingestion
from orchestration.resources import (
    HttpSourceResource,
    LandingZoneResource,
    SqlSourceResource,
    WarehouseResource,
)


def build_definitions() -> Definitions:
    catalog = load_catalog()
    connections = {
        name: (SqlSourceResource if conn.kind == "sql" else HttpSourceResource)(
            url_env=conn.url_env, default_url=conn.default
        )
        for name, conn in catalog.connections.items()
    }
    return Definitions(
        assets=build_ingestion_assets(catalog),
        jobs=[city_nightly, raw_ingestion],
        resources={"warehouse": WarehouseResource(), "landing": LandingZoneResource(), **connections},
    )


defs = build_definitions()
