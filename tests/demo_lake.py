"""Building a small demo lake for tests: generate a city, ingest it through Dagster, build dbt models.

Shared by the end-to-end and pool tests so each module only says which city it wants and checks.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from dagster import DagsterInstance

from citybrain.settings import REPO_ROOT
from demo_city.generate import DemoConfig, GenerationSummary, generate_demo_city
from demo_city.hotline_api import HotlineApiServer
from orchestration.cli.demo import prepare_demo_lake

LAKE_ENV = (
    "CITYBRAIN_LANDING",
    "CITYBRAIN_WAREHOUSE",
    "CITYBRAIN_CATALOG",
    "CITYBRAIN_CITY",
    "CITYBRAIN_SOCIAL_INSURANCE_URL",
    "CITYBRAIN_HOTLINE_API_URL",
    "CITYBRAIN_PSEUDONYM_SALT",
)


@contextlib.contextmanager
def demo_lake(home: Path, counties: list[str], days: list[str], **config) -> Iterator[GenerationSummary]:
    """A generated city in ``home`` with the environment pointing at it and its hotline API served."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CITYBRAIN_HOME", str(home))
        mp.setenv("DAGSTER_HOME", str(home / "dagster_home"))
        for var in LAKE_ENV:
            mp.delenv(var, raising=False)
        summary = generate_demo_city(
            DemoConfig(counties=counties, days=len(days), end_date=date.fromisoformat(days[-1]), **config)
        )
        prepare_demo_lake(counties)
        with HotlineApiServer(summary.hotline_store) as server:
            mp.setenv("CITYBRAIN_HOTLINE_API_URL", server.base_url)
            yield summary


def run_nightly(
    start: str,
    end: str,
    prefixes: tuple[str, ...] | None = None,
    checks: bool = True,
    keys: set[str] | None = None,
    instance: DagsterInstance | None = None,
):
    """The city_nightly job over [start, end] in one run, in process (in ``instance``, default a new ephemeral
    one); ``prefixes`` limits it to assets whose key starts with one of them (e.g. ("raw", "reference") for
    ingestion only). ``checks=False``
    leaves out the asset checks (GX suites, freshness; not the dbt tests) for tests about something else."""
    from dagster import AssetSelection, Definitions, define_asset_job

    from orchestration.definitions import build_definitions

    with contextlib.ExitStack() as stack:
        # The instance first: resolving the definitions reads the current instance's state storage, and a test
        # that ran before may have left a closed one current.
        if instance is None:
            instance = stack.enter_context(DagsterInstance.ephemeral())
        defs = build_definitions()
        if not checks:
            unchecked = define_asset_job(
                "city_nightly_unchecked", selection=AssetSelection.all().without_checks()
            )
            defs = Definitions.merge(defs, Definitions(jobs=[unchecked]))
        selection = None
        if prefixes or keys:  # keys: asset keys as "a/b" strings, added to what the prefixes select
            selection = [
                k
                for k in defs.resolve_asset_graph().executable_asset_keys
                if k.path[0] in (prefixes or ()) or k.to_user_string() in (keys or set())
            ]
        job = defs.resolve_job_def("city_nightly" if checks else "city_nightly_unchecked")
        tags = {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}
        return job.execute_in_process(
            instance=instance, tags=tags, asset_selection=selection, raise_on_error=False
        )


def ingest(start: str, end: str):
    """Only the job's ingestion and reference assets."""
    return run_nightly(start, end, ("raw", "reference"))


def dbt_build(
    warehouse: Path, target: Path, selection: list[str], *extra: str
) -> subprocess.CompletedProcess:
    """dbt build of a selection, from the project as it is; tests only where all their parents are
    selected (`--indirect-selection cautious`)."""
    dbt = Path(sys.executable).with_name("dbt")
    return subprocess.run(
        [str(dbt), "build", "--profiles-dir", ".", "--target-path", str(target), "--log-path", str(target),
         "--indirect-selection", "cautious", "--select", *selection, *extra],
        cwd=REPO_ROOT / "dbt_project",
        capture_output=True,
        text=True,
        env={**os.environ, "CITYBRAIN_WAREHOUSE": str(warehouse)},
    )  # fmt: skip
