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

from citybrain.ingest import sql_feed
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


def _engine_on(name: str, sqlite_file) -> sa.Engine:
    """An engine on the named database: a SQLite file at ``sqlite_file``, else the running server."""
    return sa.create_engine(f"sqlite:///{sqlite_file}" if name == "sqlite" else _server_url(name))


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


@pytest.mark.parametrize("name", ["sqlite", "postgresql", "mariadb"])
def test_typed_columns_arrive_as_the_text_each_database_gives(lake, catalog, name):
    """A NUMERIC(12,2), a DATE, a DATETIME and an INTEGER column, read on every database through the
    feed: the text is the value as written (two decimals kept, ISO dates, a space before the time),
    whatever Python type the driver returns for it (sql_feed._as_text's fast paths)."""
    from datetime import date, datetime
    from decimal import Decimal

    engine = _engine_on(name, lake / "typed.sqlite")
    metadata = sa.MetaData()
    table = sa.Table(
        f"typed_{uuid.uuid4().hex[:8]}",
        metadata,
        sa.Column("unit_id", sa.String(32), primary_key=True),
        sa.Column("monthly_base", sa.Numeric(12, 2)),
        sa.Column("start_day", sa.Date),
        sa.Column("staff", sa.Integer),
        sa.Column("updated_at", sa.DateTime, index=True),
    )
    metadata.create_all(engine)
    try:
        with engine.begin() as con:
            con.execute(
                table.insert(),
                [
                    {"unit_id": "U1", "monthly_base": Decimal("5000"), "start_day": date(2026, 1, 5),
                     "staff": 12, "updated_at": datetime(2026, 11, 20, 8, 0, 0)},
                    {"unit_id": "U2", "monthly_base": Decimal("-1234.5"), "start_day": None,
                     "staff": None, "updated_at": datetime(2026, 11, 20, 9, 30, 15)},
                    {"unit_id": "U3", "monthly_base": None, "start_day": date(1999, 12, 31),
                     "staff": 0, "updated_at": datetime(2026, 11, 21, 10, 0, 0)},
                ],
            )  # fmt: skip
        feed = catalog.feed("si_unit")
        columns = [c.model_copy(update={"name": n}) for c, n in zip(
            feed.columns, ["unit_id", "monthly_base", "start_day", "staff", "updated_at"], strict=False)]  # fmt: skip
        feed = feed.model_copy(
            update={
                "id": "si_unit",
                "columns": columns,
                "delivery": feed.delivery.model_copy(update={"table": table.name}),
            }
        )
        batch, _, _ = sql_feed.fetch_incremental(engine, feed, None)
        rows = batch.rows.select(["unit_id", "monthly_base", "start_day", "staff", "updated_at"]).to_pylist()
        assert [tuple(r.values()) for r in rows] == [
            ("U1", "5000.00", "2026-01-05", "12", "2026-11-20 08:00:00"),
            ("U2", "-1234.50", None, None, "2026-11-20 09:30:15"),
            ("U3", None, "1999-12-31", "0", "2026-11-21 10:00:00"),
        ], name
    finally:
        metadata.drop_all(engine)
        engine.dispose()


def test_a_column_of_one_type_becomes_the_same_text_as_value_by_value():
    """The fast paths of sql_feed._as_text give what to_text gives each value; mixed columns (a bool
    among ints, a float among decimals) go value by value."""
    from datetime import date, datetime
    from decimal import Decimal

    from citybrain.ingest.batch import to_text

    columns = {
        "decimals": ([Decimal("5000.00"), Decimal("-0.00"), Decimal("1E+3"), None, Decimal("0.000001")],
                     ["5000.00", "-0.00", "1E+3", None, "0.000001"]),
        "ints and decimals": ([7, Decimal("7.50"), None], ["7", "7.50", None]),
        "dates": ([date(2026, 11, 20), None], ["2026-11-20", None]),
        "timestamps": ([datetime(2026, 11, 20, 8, 0), datetime(2026, 11, 20, 8, 0, 0, 1)],
                       ["2026-11-20 08:00:00", "2026-11-20 08:00:00.000001"]),
        "dates and timestamps": ([date(2026, 11, 20), datetime(2026, 11, 20, 8, 0)],
                                 ["2026-11-20", "2026-11-20 08:00:00"]),
        "a bool among ints": ([1, True, None], ["1", "true", None]),
        "a float among decimals": ([Decimal("2.50"), 2.5, 3.0], ["2.50", "2.5", "3"]),
    }  # fmt: skip
    for name, (values, expected) in columns.items():
        assert sql_feed._as_text(values) == expected, name
        assert [to_text(v) for v in values] == expected, name


@pytest.mark.parametrize("name", ["sqlite", "postgresql", "mariadb"])
def test_chunks_of_columns_hold_what_sqlalchemy_rows_hold(lake, name):
    """``column_chunks`` skips building a Row per record but must give the values SQLAlchemy's rows give
    (its result processors applied: a SQLite NUMERIC as Decimal, a DATE as date), chunk by chunk. It
    relies on two SQLAlchemy internals; on the pinned release both must be there (else it falls back to
    building rows, correct but slower)."""
    from datetime import date, datetime
    from decimal import Decimal

    engine = _engine_on(name, lake / "chunks.sqlite")
    metadata = sa.MetaData()
    table = sa.Table(
        f"chunks_{uuid.uuid4().hex[:8]}",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("amount", sa.Numeric(12, 2)),
        sa.Column("ratio", sa.Float),
        sa.Column("day", sa.Date),
        sa.Column("at", sa.DateTime),
        sa.Column("active", sa.Boolean),
        sa.Column("label", sa.String(20)),
    )
    metadata.create_all(engine)
    rows = [
        {"id": n, "amount": Decimal(f"{n * 1000}.5") if n % 3 else None, "ratio": n / 4 if n % 2 else None,
         "day": date(2026, 1, n), "at": datetime(2026, 11, 20, n, 0, 0) if n != 4 else None,
         "active": n % 2 == 0, "label": f"标签{n}" if n != 2 else None}
        for n in range(1, 6)
    ]  # fmt: skip
    query = sa.select(*table.c).order_by(table.c.id)
    try:
        with engine.begin() as con:
            con.execute(table.insert(), rows)
        with engine.connect() as con:
            expected = [
                [list(column) for column in zip(*chunk, strict=True)]
                for chunk in con.execution_options(stream_results=True).execute(query).partitions(2)
            ]
            result = con.execution_options(stream_results=True).execute(query)
            assert callable(getattr(result, "_fetchmany_impl", None)), "SQLAlchemy renamed _fetchmany_impl"
            assert isinstance(getattr(result._metadata, "_processors", None), list), (
                "SQLAlchemy renamed _processors"
            )
            chunks = list(sql_feed.column_chunks(result, 2))
        assert [len(chunk[0]) for chunk in chunks] == [2, 2, 1]
        assert chunks == expected
        assert [type(v) for v in chunks[0][1]] == [Decimal, Decimal]  # the processor's type, on every driver
    finally:
        metadata.drop_all(engine)
        engine.dispose()
