"""A large delivery read ahead in a worker process (citybrain/ingest/read_ahead.py) loads exactly what the
step would have read itself: the same rows, row numbers, quarantine, log and hash. The expected tables are
those of the same delivery ingested without read-ahead into a second lake, and the worker's own state
(claimed, done, failed, gone) is driven by the test, not by timing."""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa

from assets.ingestion import build_ingestion_assets
from citybrain.ingest import read_ahead
from citybrain.ingest.landing import find_deliveries
from citybrain.ingest.pipeline import ingest_files, ingest_sql

REGISTRY = "public_security/household_registry_20261120.csv"
ROW = "{id},张三{n},男,1949-12-31,汉族,H{n},330102,杭州市上城区解放路{n}号,13800000000,2020-01-01"


def registry_bytes(catalog, rows: int) -> bytes:
    """A GB18030 registry of ``rows`` records with the hostile ones every read must keep apart."""
    header = ",".join(catalog.feed("household_registry").column_names)
    lines = [header]
    for n in range(rows):
        lines.append(ROW.format(id=f"3301021990{n:08d}", n=n))
    lines[5] = lines[5] + ",EXTRA"  # one field too many
    lines[7] = ROW.format(id="", n=7)  # blank key
    lines[9] = ROW.format(id="=HYPERLINK(1)", n=9)  # a formula
    lines[11] = '330102199001019999,"多行\n地址",男,1990-01-01,汉族,H4,330102,"带""引号""的",138,2020-01-01'
    data = ("\r\n".join(lines) + "\r\n").encode("gb18030")
    return data + "张三".encode() * 40 + b"\r\n"  # a UTF-8 line in a GB18030 file


def deliver(lake: Path, data: bytes) -> None:
    path = lake / "landing" / REGISTRY
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def tables(lake: Path) -> dict:
    con = duckdb.connect(str(lake / "warehouse.duckdb"), read_only=True)
    try:
        return {
            "rows": con.execute(
                "SELECT * EXCLUDE (_batch_id, _loaded_at) FROM raw.household_registry ORDER BY _row_number"
            ).fetchall(),
            "quarantine": con.execute(
                "SELECT row_number, raw_text, reason, detail FROM raw.quarantine ORDER BY row_number"
            ).fetchall(),
            "log": con.execute(
                "SELECT source_file, file_sha256, status, rows_received, rows_loaded, rows_quarantined, message "
                "FROM raw.ingestion_log ORDER BY source_file"
            ).fetchall(),
        }
    finally:
        con.close()


def ingest(lake: Path, catalog):
    return ingest_files(
        catalog.feed("household_registry"), lake / "landing", lake / "warehouse.duckdb", None, "run-1"
    )


def start(lake: Path, catalog, monkeypatch) -> read_ahead.ReadAhead | None:
    monkeypatch.setattr(read_ahead, "MIN_BYTES", 0)
    return read_ahead.start_for_this_process(
        catalog, {"household_registry"}, [], lake / "landing", lake / "warehouse.duckdb"
    )


@pytest.fixture
def no_read_ahead(monkeypatch):
    monkeypatch.delenv(read_ahead.READ_AHEAD_DIR_ENV, raising=False)
    yield
    os.environ.pop(read_ahead.READ_AHEAD_DIR_ENV, None)


def wait_for(path: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def inline_lake(tmp_path: Path, data: bytes, catalog, monkeypatch) -> dict:
    """The tables of the same delivery read by the step itself, in a lake of its own."""
    other = tmp_path / "inline"
    (other / "landing").mkdir(parents=True)
    deliver(other, data)
    monkeypatch.delenv(read_ahead.READ_AHEAD_DIR_ENV, raising=False)
    ingest(other, catalog)
    return tables(other)


def test_a_spilled_registry_read_ahead_loads_what_the_step_reads_itself(
    lake, catalog, tmp_path, monkeypatch, no_read_ahead, caplog
):
    # 200,000 records: past the 16 MB a batch keeps in memory, so its rows come back as a spill file
    data = registry_bytes(catalog, 200_000)
    deliver(lake, data)
    started = start(lake, catalog, monkeypatch)
    assert started is not None
    try:
        wait_for(started.directory / "0.done")
        assert os.environ[read_ahead.READ_AHEAD_DIR_ENV] == str(started.directory)
        assert (started.directory / "0.parquet").exists()  # the worker's spill file, handed over
        with caplog.at_level(logging.INFO, logger=read_ahead.__name__):
            result = ingest(lake, catalog)
        assert f"{REGISTRY}: read ahead in process {started.process.pid}" in caplog.messages
        assert not list(started.directory.glob("*.parquet")), "the spill file is removed once written"
    finally:
        read_ahead.stop_for_this_process(started)
    assert not started.directory.exists()
    assert read_ahead.READ_AHEAD_DIR_ENV not in os.environ
    # 200,000 records and the UTF-8 line; four of them kept apart (worked out from registry_bytes)
    assert (result.rows_received, result.rows_quarantined) == (200_001, 4)
    assert result.quarantined_by_reason() == {
        "column_count_mismatch": 1,
        "formula": 1,
        "missing_key": 1,
        "undecodable_bytes": 1,
    }
    assert tables(lake) == inline_lake(tmp_path, data, catalog, monkeypatch)


def test_a_small_registry_read_ahead_in_memory_loads_what_the_step_reads_itself(
    lake, catalog, tmp_path, monkeypatch, no_read_ahead, caplog
):
    data = registry_bytes(catalog, 50)
    deliver(lake, data)
    started = start(lake, catalog, monkeypatch)
    try:
        wait_for(started.directory / "0.done")
        with caplog.at_level(logging.INFO, logger=read_ahead.__name__):
            ingest(lake, catalog)
        assert f"{REGISTRY}: read ahead in process {started.process.pid}" in caplog.messages
    finally:
        read_ahead.stop_for_this_process(started)
    assert tables(lake) == inline_lake(tmp_path, data, catalog, monkeypatch)


def test_a_file_replaced_after_it_was_read_ahead_is_read_again_by_the_step(
    lake, catalog, tmp_path, monkeypatch, no_read_ahead
):
    deliver(lake, registry_bytes(catalog, 50))
    started = start(lake, catalog, monkeypatch)
    try:
        wait_for(started.directory / "0.done")
        replaced = registry_bytes(catalog, 60)  # other bytes under the same name
        deliver(lake, replaced)
        ingest(lake, catalog)
    finally:
        read_ahead.stop_for_this_process(started)
    assert tables(lake) == inline_lake(tmp_path, replaced, catalog, monkeypatch)
    assert len(tables(lake)["rows"]) == 60 - 3  # the three bad records among the 60; the UTF-8 line besides


def test_a_delivery_the_worker_cannot_read_fails_in_the_step_as_it_would_without(
    lake, catalog, tmp_path, monkeypatch, no_read_ahead
):
    header_only = (",".join(catalog.feed("household_registry").column_names) + "\r\n").encode("gb18030")
    deliver(lake, header_only)
    started = start(lake, catalog, monkeypatch)
    try:
        wait_for(started.directory / "0.failed")
        result = ingest(lake, catalog)
    finally:
        read_ahead.stop_for_this_process(started)
    assert result.problems and "no records" in result.problems[0]
    assert tables(lake) == inline_lake(tmp_path, header_only, catalog, monkeypatch)


def test_a_step_before_the_worker_reads_itself_and_the_worker_skips_the_file(
    lake, catalog, tmp_path, monkeypatch, no_read_ahead
):
    data = registry_bytes(catalog, 50)
    deliver(lake, data)
    monkeypatch.setattr(read_ahead, "MIN_BYTES", 0)
    jobs = read_ahead.plan(catalog, {"household_registry"}, [], lake / "landing", lake / "warehouse.duckdb")
    assert [j["relative"] for j in jobs] == [REGISTRY]
    directory = tmp_path / "by-hand"
    directory.mkdir()
    (directory / read_ahead.JOBS_FILE).write_text(json.dumps(jobs), encoding="utf-8")
    (directory / read_ahead.PID_FILE).write_text(str(os.getpid()), encoding="utf-8")
    monkeypatch.setenv(read_ahead.READ_AHEAD_DIR_ENV, str(directory))
    ingest(lake, catalog)  # nothing claimed the file yet: the step claims it and reads it
    read_ahead.work(directory)  # the worker finds it claimed and reads nothing
    assert sorted(p.name for p in directory.iterdir()) == ["0.claim", "jobs.json", "worker.pid"]
    assert tables(lake) == inline_lake(tmp_path, data, catalog, monkeypatch)


def test_a_worker_killed_while_reading_leaves_the_read_to_the_step(
    lake, catalog, tmp_path, monkeypatch, no_read_ahead
):
    data = registry_bytes(catalog, 200_000)
    deliver(lake, data)
    started = start(lake, catalog, monkeypatch)
    try:
        wait_for(started.directory / "0.claim")
        os.kill(started.process.pid, signal.SIGKILL)
        ingest(lake, catalog)
        assert not (started.directory / "0.done").exists()
    finally:
        read_ahead.stop_for_this_process(started)
    assert tables(lake) == inline_lake(tmp_path, data, catalog, monkeypatch)


def test_only_new_large_deliveries_are_read_ahead(lake, catalog, monkeypatch, no_read_ahead):
    deliver(lake, registry_bytes(catalog, 50))
    landing, warehouse = lake / "landing", lake / "warehouse.duckdb"
    assert read_ahead.plan(catalog, {"household_registry"}, [], landing, warehouse) == []  # below MIN_BYTES
    monkeypatch.setattr(read_ahead, "MIN_BYTES", 0)
    assert read_ahead.plan(catalog, {"schools"}, [], landing, warehouse) == []  # not in the run
    (job,) = read_ahead.plan(catalog, {"household_registry"}, [], landing, warehouse)
    assert job["feed"] == catalog.feed("household_registry").model_dump(mode="json")
    ingest(lake, catalog)
    assert read_ahead.plan(catalog, {"household_registry"}, [], landing, warehouse) == []  # loaded: not again
    assert read_ahead.start_for_this_process(catalog, {"household_registry"}, [], landing, warehouse) is None
    (delivered,) = find_deliveries(catalog.feed("household_registry"), landing, None)
    assert read_ahead.take(catalog.feed("household_registry"), delivered) is None  # nothing started


def test_read_ahead_turned_off_starts_nothing(lake, catalog, monkeypatch, no_read_ahead):
    deliver(lake, registry_bytes(catalog, 50))
    monkeypatch.setenv("CITYBRAIN_READ_AHEAD", "off")
    assert start(lake, catalog, monkeypatch) is None
    assert read_ahead.READ_AHEAD_DIR_ENV not in os.environ
    monkeypatch.setenv("CITYBRAIN_READ_AHEAD", "1")
    started = start(lake, catalog, monkeypatch)
    assert started is not None
    read_ahead.stop_for_this_process(started)


# --- a database feed ------------------------------------------------------------------------------------

INSURED_COLUMNS = ["insured_id", "id_number", "name", "unit_id", "insurance_type", "status", "start_month"]


@pytest.fixture
def insurance_db(tmp_path, monkeypatch):
    """The department's SQLite table, its cursor a text column (read by DuckDB's SQLite scanner)."""
    path = tmp_path / "social_insurance.sqlite"
    engine = sa.create_engine(f"sqlite:///{path}")
    table = sa.Table(
        "si_insured",
        sa.MetaData(),
        *[sa.Column(name, sa.Text) for name in INSURED_COLUMNS],
        sa.Column("monthly_base", sa.Numeric(12, 2)),
        sa.Column("updated_at", sa.Text),
    )
    table.metadata.create_all(engine)
    monkeypatch.setenv("CITYBRAIN_SOCIAL_INSURANCE_URL", f"sqlite:///{path}")
    yield engine, table
    engine.dispose()


def enrolment(insured_id: str, status: str, updated_at: str, base: str = "5000.00") -> dict:
    values = dict.fromkeys(INSURED_COLUMNS, "x")
    return values | {
        "insured_id": insured_id,
        "status": status,
        "monthly_base": base,
        "updated_at": updated_at,
    }


def insured_tables(warehouse: Path) -> dict:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return {
            "rows": con.execute(
                "SELECT * EXCLUDE (_batch_id, _loaded_at) FROM raw.si_insured ORDER BY _file_sha256, _row_number"
            ).fetchall(),
            "log": con.execute(
                "SELECT file_sha256, status, rows_received, rows_loaded, rows_quarantined FROM raw.ingestion_log "
                "ORDER BY finished_at"
            ).fetchall(),
            "cursor": con.execute("SELECT cursor_value, keys_at_cursor FROM raw.feed_cursor").fetchall(),
        }
    finally:
        con.close()


def test_a_database_feed_fetched_ahead_over_four_nights_loads_what_the_step_fetches_itself(
    lake, catalog, tmp_path, insurance_db, no_read_ahead, caplog
):
    engine, table = insurance_db
    feed, url = catalog.feed("si_insured"), str(engine.url)
    inline = tmp_path / "inline" / "warehouse.duckdb"
    inline.parent.mkdir()
    nights = [  # what the department's table gains before each night
        [enrolment("A1", "1", "2026-12-01 08:00:00"), enrolment("A2", "1", "2026-12-01 09:00:00", "0.125")],
        # a row committed late at exactly the cursor's timestamp, and a correction of A1
        [enrolment("A3", "1", "2026-12-01 09:00:00"), enrolment("A1", "2", "2026-12-02 10:00:00")],
        [],  # a quiet night
        [enrolment("A2", "3", "2026-12-04 07:00:00"), enrolment("", "1", "2026-12-04 07:30:00")],  # blank key
    ]
    for night, rows in enumerate(nights, start=1):
        with engine.begin() as con:
            for row in rows:
                con.execute(table.delete().where(table.c.insured_id == row["insured_id"]))
                con.execute(table.insert().values(**row))
        started = read_ahead.start_for_this_process(
            catalog, {"si_insured"}, [], lake / "landing", lake / "warehouse.duckdb"
        )
        try:
            wait_for(started.directory / "0.done")
            caplog.clear()
            with caplog.at_level(logging.INFO, logger=read_ahead.__name__):
                ingest_sql(feed, url, lake / "warehouse.duckdb", f"run-{night}")
            assert any("read ahead in process" in m for m in caplog.messages), night
            # a retried step fetches for itself: the worker's fetch is handed out once
            assert read_ahead.take_fetch(feed, url, None) is None
        finally:
            read_ahead.stop_for_this_process(started)
        ingest_sql(feed, url, inline, f"run-{night}")  # the same night, fetched by the step itself
        assert insured_tables(lake / "warehouse.duckdb") == insured_tables(inline), night
    final = insured_tables(inline)
    assert [r[3] for r in final["log"]] == [2, 2, 0, 1]  # rows loaded each night, worked out from `nights`
    assert final["cursor"][0][0] == "2026-12-04 07:30:00"  # the last value read: the blank-key row's


def test_a_fetch_from_an_older_cursor_is_not_taken(lake, catalog, tmp_path, insurance_db, no_read_ahead):
    engine, table = insurance_db
    feed, url = catalog.feed("si_insured"), str(engine.url)
    with engine.begin() as con:
        con.execute(table.insert().values(**enrolment("A1", "1", "2026-12-01 08:00:00")))
    started = read_ahead.start_for_this_process(
        catalog, {"si_insured"}, [], lake / "landing", lake / "warehouse.duckdb"
    )
    try:
        wait_for(started.directory / "0.done")
        # meanwhile another run fetched (the cursor moved), and the department wrote another row
        directory = os.environ.pop(read_ahead.READ_AHEAD_DIR_ENV)
        ingest_sql(feed, url, lake / "warehouse.duckdb", "other-run")
        with engine.begin() as con:
            con.execute(table.insert().values(**enrolment("A2", "1", "2026-12-02 08:00:00")))
        os.environ[read_ahead.READ_AHEAD_DIR_ENV] = directory
        result = ingest_sql(feed, url, lake / "warehouse.duckdb", "this-run")
    finally:
        read_ahead.stop_for_this_process(started)
    assert result.rows_loaded == 1  # A2 alone, fetched from the moved cursor, not the worker's A1 again
    assert [r[0] for r in insured_tables(lake / "warehouse.duckdb")["rows"]].count("A1") == 1


def test_the_worker_reads_from_the_end_of_the_runs_order(
    lake, catalog, insurance_db, monkeypatch, no_read_ahead
):
    """The run loads the day's feeds, then the database tables, then the full snapshot files; the worker
    starts at the other end, so that the two meet in the middle."""
    deliver(lake, registry_bytes(catalog, 50))
    day_file = lake / "landing" / "egov" / "applications_20261201.csv"
    day_file.parent.mkdir(parents=True)
    day_file.write_text("application_id\nA1\n", encoding="utf-8")
    monkeypatch.setattr(read_ahead, "MIN_BYTES", 0)
    feeds = {"household_registry", "si_insured", "egov_applications"}
    jobs = read_ahead.plan(catalog, feeds, ["2026-12-01"], lake / "landing", lake / "warehouse.duckdb")
    assert [(j["kind"], j["feed"]["id"]) for j in jobs] == [
        ("file", "household_registry"),
        ("sql", "si_insured"),
        ("file", "egov_applications"),
    ]
    priorities = {
        key.path[1]: node.tags.get("dagster/priority", "0")
        for node, key in ((a.op, a.key) for a in build_ingestion_assets(catalog))
        if key.path[1] in feeds
    }
    assert priorities == {"egov_applications": "0", "si_insured": "-1", "household_registry": "-2"}
