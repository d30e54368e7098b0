"""The database feed against real databases: a SQLite file, and PostgreSQL and MariaDB when running.

Each test creates its own table, reads it incrementally through the ingestion pipeline and checks
that the cursor neither refetches nor misses rows (including one committed late with the cursor's
own timestamp).
"""

from __future__ import annotations

import uuid

import duckdb
import pytest
import sqlalchemy as sa

from citybrain.ingest.pipeline import ingest_sql

SERVERS = {
    "postgresql": "postgresql+psycopg2://postgres@127.0.0.1:5432/test",
    "mariadb": "mysql+pymysql://root@127.0.0.1:3306/test",
}


def _server_url(name: str) -> str:
    url = SERVERS[name]
    engine = sa.create_engine(url)
    try:
        with engine.connect():
            pass
    except Exception as exc:  # noqa: BLE001 - any failure means the server is not there
        pytest.skip(
            f"{name} server not reachable at {engine.url.render_as_string(hide_password=True)}: {exc.__class__.__name__}"
        )
    finally:
        engine.dispose()
    return url


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def database(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'social_insurance.sqlite'}"
    else:
        url = _server_url(request.param)
    engine = sa.create_engine(url)
    table_name = f"si_unit_{uuid.uuid4().hex[:8]}"
    metadata = sa.MetaData()
    table = sa.Table(
        table_name,
        metadata,
        sa.Column("unit_id", sa.String(32), primary_key=True),
        sa.Column("uscc", sa.String(18)),
        sa.Column("unit_name", sa.String(200)),
        sa.Column("district_code", sa.String(6)),
        sa.Column("status", sa.String(8)),
        sa.Column("updated_at", sa.DateTime, index=True),
    )
    metadata.create_all(engine)
    yield url, engine, table
    metadata.drop_all(engine)
    engine.dispose()


def _row(unit_id: str, updated_at: str, name: str = "某公司") -> dict:
    from datetime import datetime

    return {
        "unit_id": unit_id,
        "uscc": "91330102MA2GXXXX0X",
        "unit_name": name,
        "district_code": "330102",
        "status": "正常",
        "updated_at": datetime.fromisoformat(updated_at),
    }


def _rows(lake, feed_id="si_unit"):
    con = duckdb.connect(str(lake / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(
            f"SELECT unit_id, unit_name, updated_at, _batch_id FROM raw.{feed_id} ORDER BY _batch_id, unit_id"
        ).fetchall()
    finally:
        con.close()


def test_incremental_read_neither_refetches_nor_misses(lake, catalog, database):
    url, engine, table = database
    feed = catalog.feed("si_unit")
    feed = feed.model_copy(update={"delivery": feed.delivery.model_copy(update={"table": table.name})})
    warehouse = lake / "warehouse.duckdb"
    with engine.begin() as con:
        con.execute(table.insert(), [_row("U1", "2026-11-20 08:00:00"), _row("U2", "2026-11-20 09:00:00")])

    first = ingest_sql(feed, url, warehouse, "run-1")
    assert first.rows_loaded == 2 and not first.problems
    assert first.entries[0].source_file.startswith("db:") and table.name in first.entries[0].source_file

    again = ingest_sql(feed, url, warehouse, "run-2")
    assert again.rows_loaded == 0 and not again.problems

    with engine.begin() as con:
        con.execute(table.insert(), [_row("U0", "2026-11-20 09:00:00"), _row("U3", "2026-11-21 10:00:00")])
        con.execute(
            table.update()
            .where(table.c.unit_id == "U1")
            .values(unit_name="改名公司", updated_at=sa.func.now())
        )
    third = ingest_sql(feed, url, warehouse, "run-3")
    assert sorted(r[0] for r in _rows(lake) if r[3] == "run-3") == ["U0", "U1", "U3"]
    assert third.rows_loaded == 3
    assert [r[1] for r in _rows(lake) if r[0] == "U1"] == ["某公司", "改名公司"]  # both versions kept in raw
    assert ingest_sql(feed, url, warehouse, "run-4").rows_loaded == 0


def test_missing_table_is_a_clear_error(lake, catalog, database):
    url, _, _ = database
    feed = catalog.feed("si_unit")
    feed = feed.model_copy(update={"delivery": feed.delivery.model_copy(update={"table": "no_such_table"})})
    result = ingest_sql(feed, url, lake / "warehouse.duckdb", "run-1")
    assert len(result.problems) == 1 and "table 'no_such_table' does not exist" in result.problems[0]


def test_missing_column_is_a_clear_error(lake, catalog, database):
    url, engine, table = database
    feed = catalog.feed("si_insured")
    feed = feed.model_copy(update={"delivery": feed.delivery.model_copy(update={"table": table.name})})
    result = ingest_sql(feed, url, lake / "warehouse.duckdb", "run-1")
    assert "missing columns ['insured_id'" in result.problems[0]


def test_unreachable_database_is_retried_then_reported(lake, catalog, monkeypatch):
    from citybrain.ingest import sql_feed

    monkeypatch.setattr(sql_feed, "TRANSIENT_ATTEMPTS", 2)
    feed = catalog.feed("si_unit")
    result = ingest_sql(
        feed, "postgresql+psycopg2://nobody@127.0.0.1:1/none", lake / "warehouse.duckdb", "run-1"
    )
    assert "database unreachable after 2 attempts" in result.problems[0]
    assert "nobody" in result.problems[0]
