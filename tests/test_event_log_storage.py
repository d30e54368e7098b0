"""The packaged instance's event log (orchestration/event_log_storage.py) on real SQLite files.

A fresh DAGSTER_HOME with the packaged dagster.yaml really runs a job whose asset carries many checks,
as a dbt step does (a planned and an evaluated check event each). What it stored is read back by
Dagster's own, unmodified ``SqliteEventLogStorage`` on the same directory (the files are Dagster's, a
lake can switch either way), and the SQLite connections opened on the event-log files are counted:
Dagster's storage opens three per check evaluation, this one keeps its connections. The events Dagster
plans when it creates a run arrive as one batch, stored in one transaction per file.
"""

import logging
import shutil
import time
from pathlib import Path

import pytest
from dagster import (
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSpec,
    AssetKey,
    DagsterInstance,
    Definitions,
    MaterializeResult,
    asset,
    define_asset_job,
    materialize,
)
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log import SqliteEventLogStorage
from sqlalchemy import Engine, event

from citybrain.settings import REPO_ROOT
from orchestration.event_log_storage import BATCH_SIZE_ENV, ReusingSqliteEventLogStorage

CONFIG = REPO_ROOT / "orchestration" / "instance" / "dagster.yaml"
CHECKS = 60


@asset(check_specs=[AssetCheckSpec(f"rule_{n}", asset="checked_table") for n in range(CHECKS)])
def checked_table():
    yield MaterializeResult()
    for n in range(CHECKS):
        yield AssetCheckResult(check_name=f"rule_{n}", passed=n % 3 != 0)


@asset(check_specs=[AssetCheckSpec(f"rule_{n}", asset="other_table") for n in range(CHECKS)])
def other_table():
    yield MaterializeResult()
    for n in range(CHECKS):
        yield AssetCheckResult(check_name=f"rule_{n}", passed=True)


@pytest.fixture
def instance(lake, monkeypatch):
    monkeypatch.setenv(BATCH_SIZE_ENV, "0")  # recorded, so that the storage's default is undone after
    monkeypatch.delenv(BATCH_SIZE_ENV)
    shutil.copyfile(CONFIG, lake / "dagster_home" / "dagster.yaml")
    with DagsterInstance.get() as instance:
        yield instance


@pytest.fixture
def event_log_connects(lake):
    """Paths of the SQLite files of the event log (history/runs/) that any engine connected to."""
    runs_dir = (lake / "dagster_home" / "history" / "runs").resolve()
    opened: list[Path] = []

    def on_connect(dbapi_connection, _record):
        for _, _, file in dbapi_connection.execute("PRAGMA database_list").fetchall():
            if file and Path(file).resolve().parent == runs_dir:
                opened.append(Path(file))

    event.listen(Engine, "connect", on_connect)
    yield opened
    event.remove(Engine, "connect", on_connect)


@pytest.fixture
def event_log_commits(lake):
    """Paths of the event-log files (history/runs/) of every transaction committed on them."""
    runs_dir = (lake / "dagster_home" / "history" / "runs").resolve()
    committed: list[Path] = []

    def on_commit(conn):
        file = Path(conn.engine.url.database or "")
        if file.name and file.resolve().parent == runs_dir:
            committed.append(file)

    event.listen(Engine, "commit", on_commit)
    yield committed
    event.remove(Engine, "commit", on_commit)


def _stock_storage(lake: Path) -> SqliteEventLogStorage:
    return SqliteEventLogStorage(str(lake / "dagster_home" / "history" / "runs"))


def _statuses(storage, check_names) -> dict[str, list]:
    return {
        name: [
            record.status
            for record in storage.get_asset_check_execution_history(
                AssetCheckKey(AssetKey("checked_table"), name), limit=10
            )
        ]
        for name in check_names
    }


def test_the_packaged_instance_stores_through_it_and_dagster_reads_the_same_files(instance, lake):
    assert type(instance.event_log_storage) is ReusingSqliteEventLogStorage
    result = materialize([checked_table], instance=instance)
    assert result.success

    stock = _stock_storage(lake)
    try:
        ours = instance.get_records_for_run(result.run_id, limit=10_000).records
        theirs = stock.get_records_for_run(result.run_id, limit=10_000).records
        assert [r.storage_id for r in theirs] == [r.storage_id for r in ours]
        kinds = [
            r.event_log_entry.dagster_event_type.value for r in theirs if r.event_log_entry.dagster_event
        ]
        assert kinds.count("ASSET_CHECK_EVALUATION") == CHECKS
        assert kinds.count("ASSET_CHECK_EVALUATION_PLANNED") == CHECKS
        # Every check's one execution, as Dagster's own storage reads it from the index file.
        expected = {
            f"rule_{n}": [
                AssetCheckExecutionRecordStatus.SUCCEEDED if n % 3 else AssetCheckExecutionRecordStatus.FAILED
            ]
            for n in range(CHECKS)
        }
        assert _statuses(stock, expected) == expected
        latest = stock.get_latest_materialization_events([AssetKey("checked_table")])
        assert latest[AssetKey("checked_table")].run_id == result.run_id
    finally:
        stock.dispose()


def test_a_run_with_many_checks_opens_a_few_connections_not_several_per_event(instance, event_log_connects):
    result = materialize([checked_table], instance=instance)
    assert result.success
    stored = len(instance.get_records_for_run(result.run_id, limit=10_000).records)
    assert stored > 2 * CHECKS
    # One kept connection per file (the run's and the index), plus one each time Dagster asks whether
    # a table it has not seen yet exists. Dagster's own storage opens three per check evaluation.
    assert len(event_log_connects) <= 8, sorted(map(str, event_log_connects))
    assert {p.name for p in event_log_connects} >= {f"{result.run_id}.db", "index.db"}


def test_events_are_readable_by_another_storage_as_soon_as_stored(instance, lake):
    """Each use is its own committed transaction: a kept connection holds nothing back."""
    first = materialize([checked_table], instance=instance)
    stock = _stock_storage(lake)
    try:
        before = len(stock.get_records_for_run(first.run_id, limit=10_000).records)
        assert before == len(instance.get_records_for_run(first.run_id, limit=10_000).records)
        second = materialize([checked_table], instance=instance)
        statuses = _statuses(stock, ["rule_0", "rule_1"])
        assert statuses == {
            "rule_0": [AssetCheckExecutionRecordStatus.FAILED] * 2,
            "rule_1": [AssetCheckExecutionRecordStatus.SUCCEEDED] * 2,
        }
        assert (
            stock.get_latest_materialization_events([AssetKey("checked_table")])[
                AssetKey("checked_table")
            ].run_id
            == second.run_id
        )
    finally:
        stock.dispose()


def test_wiping_the_instance_leaves_no_connection_on_a_deleted_file(instance, lake):
    """Dagster's wipe deletes the runs' files; an event stored for a run afterwards must land in the
    file Dagster recreates, not in a deleted one a kept connection still points to."""
    first = materialize([checked_table], instance=instance)
    instance.wipe()
    assert not (lake / "dagster_home" / "history" / "runs" / f"{first.run_id}.db").exists()
    instance.report_engine_event("stored after the wipe", first.dagster_run)
    second = materialize([checked_table], instance=instance)
    assert second.success
    stock = _stock_storage(lake)
    try:
        messages = [r.event_log_entry.message for r in stock.get_records_for_run(first.run_id).records]
        assert messages == ["stored after the wipe"]
        assert _statuses(stock, ["rule_2"]) == {"rule_2": [AssetCheckExecutionRecordStatus.SUCCEEDED]}
    finally:
        stock.dispose()


def test_a_table_not_there_is_asked_again(instance):
    storage = instance.event_log_storage
    assert storage.has_table("asset_check_executions")
    assert not storage.has_table("no_such_table")
    assert "no_such_table" not in storage._tables_seen


def _planned_job():
    return Definitions(
        assets=[checked_table, other_table],
        jobs=[define_asset_job("planned", ["checked_table", "other_table"])],
    ).resolve_job_def("planned")


@pytest.mark.parametrize("batch_size", [None, "0"])
def test_the_events_planned_for_a_new_run_are_stored_in_one_transaction_per_file(
    instance, lake, event_log_commits, monkeypatch, batch_size
):
    """Creating a run plans an event per asset and check: one batch. The storage turns batching on for
    its process (unset: its default); set to 0 by the user, each event is stored on its own, as before."""
    if batch_size is not None:
        monkeypatch.setenv(BATCH_SIZE_ENV, batch_size)
    run = instance.create_run_for_job(_planned_job())
    planned = 2 + 2 * CHECKS
    stock = _stock_storage(lake)
    try:
        kinds = [
            r.event_log_entry.dagster_event_type.value for r in stock.get_records_for_run(run.run_id).records
        ]
        assert kinds.count("ASSET_MATERIALIZATION_PLANNED") == 2
        assert kinds.count("ASSET_CHECK_EVALUATION_PLANNED") == 2 * CHECKS
        assert stock.get_latest_planned_materialization_info(AssetKey("other_table")).run_id == run.run_id
    finally:
        stock.dispose()
    files = {f"{run.run_id}.db", "index.db"}
    if batch_size is None:
        # The batch: one transaction per file; the rest is Dagster creating the new run's file (its schema).
        assert len(event_log_commits) <= 8, [p.name for p in event_log_commits]
    else:
        assert len(event_log_commits) >= planned
        assert {p.name for p in event_log_commits} == files


def test_a_batch_that_fails_stores_none_of_its_events(instance, lake):
    """A batch is all or nothing (Dagster then stores its events one by one), and the storage is
    usable after it."""
    run = instance.create_run_for_job(_planned_job())
    storage = instance.event_log_storage
    before = len(storage.get_records_for_run(run.run_id, limit=10_000).records)

    def entry(message: str) -> EventLogEntry:
        return EventLogEntry(
            error_info=None,
            level=logging.INFO,
            user_message=message,
            run_id=run.run_id,
            timestamp=time.time(),
        )

    with pytest.raises(Exception, match="event"):
        storage.store_event_batch([entry("first of a failed batch"), "not an event"])
    storage.store_event(entry("stored after"))
    stock = _stock_storage(lake)
    try:
        messages = [
            r.event_log_entry.user_message
            for r in stock.get_records_for_run(run.run_id, limit=10_000).records
        ]
        assert len(messages) == before + 1
        assert "first of a failed batch" not in messages
        assert messages[-1] == "stored after"
    finally:
        stock.dispose()
