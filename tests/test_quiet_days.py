"""A quiet day is not a hole: a feed that declares quiet_days and delivers a day with a header only passes the
"partition present" check, in the raw layer and in the pool tables built from it; a day never delivered, or
an empty day of a feed that may not be quiet, still fails it."""

from __future__ import annotations

import duckdb
import pytest

from citybrain.ingest.pipeline import ingest_files
from citybrain.quality.suites import load_suites
from citybrain.quality.validate import expected_columns, validate_suites

QUIET, MISSING = "2026-11-21", "2026-11-22"


def header_only(catalog, feed_id: str) -> bytes:
    return (",".join(catalog.feed(feed_id).column_names) + "\n").encode()


def partition_present(warehouse, dataset: str, partition: str) -> bool:
    suite = next(s for s in load_suites() if s.dataset == dataset)
    (run,) = validate_suites(warehouse, [(suite, [partition])])
    (outcome,) = [o for o in run.outcomes if o.rule == "citybrain_partition_present"]
    return outcome.success


@pytest.fixture
def warehouse(lake, catalog):
    landing, warehouse = lake / "landing", lake / "warehouse.duckdb"
    for feed_id, relative in (
        ("egov_applications", "egov/applications_20261121.csv"),
        ("operator_a_presence", "operators/cmcc/presence/20261121/presence_h3_r8.csv"),
    ):
        path = landing / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(header_only(catalog, feed_id))
        result = ingest_files(catalog.feed(feed_id), landing, warehouse, QUIET, "night-1")
        assert not result.problems and result.rows_loaded == 0
    missing = ingest_files(catalog.feed("egov_applications"), landing, warehouse, MISSING, "night-2")
    assert missing.problems  # no delivery at all: the ingestion says so
    return warehouse


def test_catalog_declares_which_feeds_may_be_quiet(catalog):
    assert catalog.feed("egov_applications").quiet_days
    assert not catalog.feed("operator_a_presence").quiet_days
    assert not catalog.feed("hotline_tickets").quiet_days


def test_raw_quiet_day_passes_and_a_missing_or_unquiet_empty_day_fails(warehouse):
    assert partition_present(warehouse, "raw.egov_applications", QUIET)
    assert not partition_present(warehouse, "raw.egov_applications", MISSING)
    assert not partition_present(warehouse, "raw.operator_a_presence", QUIET)


def test_a_pool_table_built_only_from_quiet_feeds_may_have_an_empty_day(warehouse):
    suite = next(s for s in load_suites() if s.dataset == "pool.fct_service_application")
    columns = ", ".join(f'"{name}" {kind}' for name, kind in expected_columns(suite).items())
    with duckdb.connect(str(warehouse)) as con:
        con.execute("CREATE SCHEMA pool")
        con.execute(f"CREATE TABLE pool.fct_service_application ({columns})")
    assert partition_present(warehouse, "pool.fct_service_application", QUIET)
    assert not partition_present(warehouse, "pool.fct_service_application", MISSING)
