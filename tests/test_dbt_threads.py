"""How many models a dbt step builds at once (citybrain.settings.dbt_threads): two while the warehouse file
is at most a quarter of DuckDB's memory limit, one beyond, or what $CITYBRAIN_DBT_THREADS says. The step itself is run
under a limit far below its data by tests/test_reliability_pressure.py (slow)."""

import pytest

from citybrain import settings

GB = 10**9


@pytest.fixture(autouse=True)
def _no_settings(monkeypatch):
    monkeypatch.delenv(settings.DBT_THREADS_ENV, raising=False)
    monkeypatch.delenv(settings.DUCKDB_MEMORY_LIMIT_ENV, raising=False)


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        ("2GB", 2 * GB),
        ("64MB", 64 * 10**6),
        ("512MiB", 512 * 2**20),
        ("1.5 GiB", int(1.5 * 2**30)),
        ("4gb", 4 * GB),
        ("100000", 100_000),
    ],
)
def test_the_memory_limit_is_read_as_duckdb_reads_it(monkeypatch, limit, expected):
    monkeypatch.setenv(settings.DUCKDB_MEMORY_LIMIT_ENV, limit)
    assert settings.memory_limit_bytes() == expected


def test_without_a_limit_duckdbs_default_of_four_fifths_of_the_ram_counts(monkeypatch):
    import os

    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert settings.memory_limit_bytes() == int(ram * 0.8)
    monkeypatch.setenv(settings.DUCKDB_MEMORY_LIMIT_ENV, "80%")  # not a size DuckDB takes
    assert settings.duckdb_size_bytes("80%") is None
    assert settings.memory_limit_bytes() == int(ram * 0.8)


def test_two_models_at_once_while_the_warehouse_is_at_most_a_quarter_of_the_limit_one_beyond(monkeypatch):
    monkeypatch.setenv(settings.DUCKDB_MEMORY_LIMIT_ENV, "2GB")
    assert settings.dbt_threads(0) == 2  # before the first load
    assert settings.dbt_threads(30 * 10**6) == 2  # a demo lake
    assert settings.dbt_threads(GB // 2) == 2
    assert settings.dbt_threads(GB // 2 + 1) == 1
    assert settings.dbt_threads(760 * 10**6) == 1  # a 1M-resident lake after a few nights
    assert settings.dbt_threads(7 * GB) == 1  # a 10M-resident lake


def test_the_environment_fixes_the_number(monkeypatch):
    monkeypatch.setenv(settings.DUCKDB_MEMORY_LIMIT_ENV, "64MB")
    monkeypatch.setenv(settings.DBT_THREADS_ENV, "3")
    assert settings.dbt_threads(7 * GB) == 3
