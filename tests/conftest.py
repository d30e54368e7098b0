"""Shared fixtures: every test gets its own lake (CITYBRAIN_HOME) so nothing touches data/."""

from __future__ import annotations

from pathlib import Path

import pytest

from citybrain.catalog import Catalog, load_catalog


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


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()
