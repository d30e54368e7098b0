"""Shared fixtures: every test gets its own lake (CITYBRAIN_HOME) so nothing touches data/; and the order the
test files run in, so that `make test`'s two workers (pytest-xdist, a file per worker) finish together."""

from __future__ import annotations

from pathlib import Path

import pytest

from citybrain.catalog import Catalog, load_catalog

# The files that run the Dagster nightly over a generated city, most expensive first (seconds measured on 2
# cores, `--durations`): they start first, so no long file is left to run alone at the end while the other
# worker idles. Every other file keeps its place after them. A file missing from the list only runs later.
EXPENSIVE_FIRST = (
    "test_quality_gate.py",  # ~270 s: a good night, a bad night and a hostile night, with a reader meanwhile
    "test_stale_tables.py",  # ~240 s: four nights, one of them late
    "test_failed_dbt_tests.py",  # ~210 s: four nights, a failed dbt test on two of them
    "test_demo_end_to_end.py",  # ~160 s: the whole job, a rerun, a redelivery and the Parquet-lake parity build
    "test_pool_incremental.py",  # ~150 s: a backfill and three nights
    "test_late_updates.py",  # ~80 s: four nights of the hotline's models
    "test_three_province_nights.py",  # ~75 s: four nights of the ingestion and selected models
    "test_dask_executor.py",  # ~65 s: the ingestion job on a Dask cluster
    "test_pool_spatial.py",
    "test_pool_people.py",
    "test_run_queue.py",
    "test_quality_scorecards.py",
    "test_region_extents.py",
    "test_operator_feeds.py",
    "test_small_cells.py",
)


@pytest.fixture
def lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "lake"
    (home / "landing").mkdir(parents=True)
    monkeypatch.setenv("CITYBRAIN_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster_home"))
    (home / "dagster_home").mkdir()
    for var in (
        "CITYBRAIN_LANDING",
        "CITYBRAIN_WAREHOUSE",
        "CITYBRAIN_CATALOG",
        "CITYBRAIN_HOTLINE_API_URL",
        "CITYBRAIN_SOCIAL_INSURANCE_URL",
    ):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture(autouse=True)
def _no_closed_dagster_instance_left_current() -> None:
    """Forget a closed Dagster instance's definitions-state storage left current by an earlier test.

    Entering a ``DagsterInstance`` makes its state storage the process's current one (a context variable,
    reset on exit); resolving ``Definitions`` reads it. When an earlier test let an instance go without
    leaving its context, the storage stays current with its instance gone, and the next ``materialize`` (or
    any definitions resolved outside an instance) fails with "Attempted to resolve undefined DagsterInstance
    weakref" — in whichever test happens to follow on that worker. A storage whose instance is alive is kept.
    """
    from dagster._core.errors import DagsterInvariantViolationError
    from dagster._core.storage.defs_state import base

    storage = base.DefsStateStorage.get()
    if storage is not None:
        try:
            storage._instance  # noqa: B018  (the property raises when the instance is gone)
        except DagsterInvariantViolationError:
            base._current_storage.set(None)


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The expensive files first (EXPENSIVE_FIRST), the rest in collection order; xdist's `--dist loadfile`
    hands the files out in this order when run with `--no-loadscope-reorder` (the Makefile)."""
    rank = {name: i for i, name in enumerate(EXPENSIVE_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order
