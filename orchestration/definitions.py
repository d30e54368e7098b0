"""The City Brain Lake code location. Kept small: it loads the per-concern modules and wires resources."""

from __future__ import annotations

import sys
from pathlib import Path

from dagster import Definitions

from assets.dbt.models import DBT_RESOURCE_KEY, dbt_asset_definitions
from assets.dbt_project import citybrain_dbt_project
from assets.freshness import build_freshness_checks
from assets.ingestion import build_ingestion_assets
from assets.pipeline_tables import pipeline_table_specs
from assets.publication import pool_publication
from assets.quality import build_quality_checks
from assets.reference import reference_divisions
from assets.resource_catalog import resource_catalog
from assets.resources import (
    HttpSourceResource,
    LandingZoneResource,
    PublicationResource,
    SqlSourceResource,
    WarehouseResource,
)
from assets.sharing_delivery import sharing_delivery
from citybrain import settings
from citybrain.catalog import load_catalog
from orchestration.dbt_cli import InstalledDbtCliResource
from orchestration.executors import selected_executor
from orchestration.jobs import city_nightly, raw_ingestion
from orchestration.schedules import build_schedules
from orchestration.sensors import build_sensors

# dbt as installed beside this Python (so a non-activated virtualenv, `.venv/bin/citybrain`, works), through
# our wrapper: it prepares the Spark session on the Spark targets and sets Python's garbage collector for a
# long-lived process on every target (citybrain/scale/dbt_cli.py).
DBT_EXECUTABLE = str(Path(sys.executable).with_name("citybrain-dbt"))


def dbt_resource() -> InstalledDbtCliResource:
    """dbt on the configured target ($CITYBRAIN_DBT_TARGET, docs/SCALE.md), run through ``citybrain-dbt``,
    which on the Spark targets prepares the Spark session (functions, lake views) before dbt starts."""
    target = settings.dbt_target()
    return InstalledDbtCliResource(
        project_dir=citybrain_dbt_project,
        dbt_executable=DBT_EXECUTABLE,
        target=None if target == "duckdb" else target,  # duckdb: the profile's default target
    )


def build_definitions() -> Definitions:
    catalog = load_catalog()
    connections = {
        name: (SqlSourceResource if conn.kind == "sql" else HttpSourceResource)(
            url_env=conn.url_env, default_url=conn.default
        )
        for name, conn in catalog.connections.items()
    }
    assets = [
        *build_ingestion_assets(catalog),
        reference_divisions,
        *dbt_asset_definitions(),
        pool_publication,
        resource_catalog,
        sharing_delivery,
    ]
    freshness_checks = build_freshness_checks(catalog)
    defined = [key for definition in assets for key in definition.keys]
    return Definitions(
        assets=[*assets, *pipeline_table_specs(defined)],
        asset_checks=[*build_quality_checks(assets), *freshness_checks],
        jobs=[city_nightly, raw_ingestion],
        executor=selected_executor(),  # Dagster's default, preloaded; $CITYBRAIN_EXECUTOR=dask (executors.py)
        schedules=build_schedules(catalog),
        sensors=build_sensors(catalog, freshness_checks),
        resources={
            "warehouse": WarehouseResource(),
            "publication": PublicationResource(),
            "landing": LandingZoneResource(),
            DBT_RESOURCE_KEY: dbt_resource(),
            **connections,
        },
    )


defs = build_definitions()
