"""Data Docs updated in the background of a run executed in one process (citybrain/quality/data_docs.py):
the update returns at once with the index page, one update at a time, everything rendered once the run
waits, and a failed update reported, not raised, and reported once.

``citybrain run`` end to end (it defers, and waits before it ends) is tests/test_progress.py's
``test_citybrain_run_prints_every_stage_with_counts``, which checks the site after the run returns."""

from __future__ import annotations

import duckdb
import pytest

from citybrain.quality import data_docs


@pytest.fixture
def validated(tmp_path, monkeypatch):
    """A small table validated with GX under a fresh lake home: (run_id -> [SuiteRun]) factory."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    from citybrain.quality.gx_duckdb import warehouse_batches
    from citybrain.quality.suites import SuiteSpec
    from citybrain.quality.validate import SuiteRun

    monkeypatch.setenv("CITYBRAIN_HOME", str(tmp_path))
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "CREATE SCHEMA raw; CREATE TABLE raw.people AS SELECT range::VARCHAR AS id, "
            "CASE WHEN range = 3 THEN NULL ELSE 'x' END AS name FROM range(10)"
        )

    def runs(dataset: str = "raw.people") -> list:
        expectations = [
            gxe.ExpectColumnValuesToNotBeNull(column="name"),
            gxe.ExpectTableRowCountToBeBetween(min_value=1),
        ]
        with warehouse_batches(warehouse) as batches:
            result = batches.batch("SELECT * FROM raw.people").validate(
                gx.ExpectationSuite(name=dataset, expectations=[e.copy() for e in expectations])
            )
        return [SuiteRun(SuiteSpec(dataset=dataset, expectations=[]), None, [], result, expectations)]

    data_docs.defer_updates(True)
    yield runs
    data_docs.wait_for_data_docs()
    data_docs.defer_updates(False)


def _result_pages(run_id: str) -> list:
    site = data_docs.data_docs_index().parent
    return sorted((site / "validations").rglob(f"{run_id}/*/*.html"))


def test_deferred_updates_render_every_run_once_waited_for(validated):
    first, second = validated(), validated()
    assert data_docs.update_data_docs_soon("run-a", first) == data_docs.data_docs_index()
    pending = data_docs._pending
    assert pending is not None and pending.name == "data-docs"
    data_docs.update_data_docs_soon("run-b", second)
    assert not pending.is_alive()  # the second update started only after the first had finished
    assert data_docs.wait_for_data_docs() == []
    assert _result_pages("run-a") and _result_pages("run-b")
    index = data_docs.data_docs_index().read_text(encoding="utf-8")
    assert "run-a" in index and "run-b" in index


def test_a_failed_update_is_reported_once_and_raises_nothing(validated):
    broken = validated()
    broken[0].gx_result = None  # nothing GX can store as a validation result
    data_docs.update_data_docs_soon("run-broken", broken)
    data_docs.update_data_docs_soon("run-good", validated())  # waits for the failed one, keeps its failure
    failures = data_docs.wait_for_data_docs()
    assert len(failures) == 1 and failures[0].startswith("raw.people: ")
    assert data_docs.wait_for_data_docs() == []
    assert _result_pages("run-good") and not _result_pages("run-broken")


def test_without_deferral_an_update_happens_at_once_and_its_failure_raises(validated):
    data_docs.defer_updates(False)
    data_docs.update_data_docs_soon("run-now", validated())
    assert data_docs._pending is None and _result_pages("run-now")
    broken = validated()
    broken[0].gx_result = None
    with pytest.raises(Exception):  # noqa: B017 - whatever GX raises, the step sees it
        data_docs.update_data_docs_soon("run-broken-now", broken)
