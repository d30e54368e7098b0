"""Reading a department database table incrementally over SQLAlchemy (SQLite, PostgreSQL, MySQL/MariaDB).

The cursor is the last ``updated_at`` read plus the keys already read at exactly that value: the next
fetch asks for ``updated_at >= cursor`` and drops those keys, so a row committed later with the same
timestamp is not missed and nothing already read is read twice.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, NoSuchTableError, OperationalError

from citybrain.catalog import Feed, SqlDelivery
from citybrain.ingest.batch import Batch, BatchBuilder, DeliveryError, to_text

TRANSIENT_ATTEMPTS = 4


def source_name(engine: sa.Engine, table: str) -> str:
    return f"db:{engine.url.render_as_string(hide_password=True)}#{table}"


def _check_sqlite_file(engine: sa.Engine, source: str) -> None:
    """SQLite creates a missing database file on connect: a moved department file would read as empty."""
    if engine.url.get_backend_name() != "sqlite":
        return
    database = engine.url.database
    if (
        database
        and database != ":memory:"
        and not database.startswith("file:")
        and not Path(database).is_file()
    ):
        raise DeliveryError(source, f"database file {database} does not exist; not creating an empty one")


def _reflect(engine: sa.Engine, delivery: SqlDelivery, source: str) -> sa.Table:
    schema, _, name = delivery.table.rpartition(".")
    try:
        return sa.Table(name, sa.MetaData(), schema=schema or None, autoload_with=engine)
    except NoSuchTableError:
        raise DeliveryError(source, f"table {delivery.table!r} does not exist") from None


def _cursor_bind(column: sa.Column, value: str) -> object:
    """Compare in the column's own type so a DATETIME column is not compared as text."""
    from datetime import datetime

    if isinstance(column.type, sa.DateTime):
        return datetime.fromisoformat(value)
    return value


def fetch_incremental(
    engine: sa.Engine, feed: Feed, cursor: tuple[str, list[str]] | None
) -> tuple[Batch, str, tuple[str, list[str]] | None]:
    """Rows changed since ``cursor``. Returns the batch, a content hash and the new cursor."""
    delivery = feed.delivery
    assert isinstance(delivery, SqlDelivery)
    source = source_name(engine, delivery.table)
    _check_sqlite_file(engine, source)
    for attempt in range(1, TRANSIENT_ATTEMPTS + 1):
        try:
            return _fetch(engine, feed, delivery, source, cursor)
        except OperationalError as exc:
            if attempt == TRANSIENT_ATTEMPTS:
                raise DeliveryError(
                    source, f"database unreachable after {attempt} attempts: {exc.orig}"
                ) from None
            time.sleep(min(2 ** (attempt - 1) * 0.5, 8))
        except DBAPIError as exc:
            raise DeliveryError(source, f"query failed: {exc.orig}") from None
    raise AssertionError("unreachable")


def _fetch(engine, feed: Feed, delivery: SqlDelivery, source: str, cursor):
    table = _reflect(engine, delivery, source)
    missing = [c for c in feed.column_names if c not in table.c]
    if missing:
        raise DeliveryError(source, f"missing columns {missing}; table has {list(table.c.keys())}")
    cursor_column = table.c[delivery.cursor]
    query = sa.select(*[table.c[c] for c in feed.column_names]).order_by(
        cursor_column, *[table.c[k] for k in feed.key]
    )
    seen_at_cursor: set[str] = set()
    if cursor is not None:
        query = query.where(cursor_column >= _cursor_bind(cursor_column, cursor[0]))
        seen_at_cursor = set(cursor[1])
    builder = BatchBuilder(source, feed.column_names, feed.key)
    key_index = [feed.column_names.index(k) for k in feed.key]
    cursor_index = feed.column_names.index(delivery.cursor)
    digest = hashlib.sha256()
    new_cursor, keys_at_new = (cursor[0], list(cursor[1])) if cursor else (None, [])
    row_number = 0
    with engine.connect() as con:
        result = con.execution_options(stream_results=True, yield_per=delivery.batch_size).execute(query)
        for row in result:
            values = [to_text(v) for v in row]
            key = json.dumps([values[i] for i in key_index], ensure_ascii=False)
            cursor_value = values[cursor_index]
            if cursor is not None and cursor_value == cursor[0] and key in seen_at_cursor:
                continue
            row_number += 1
            raw = json.dumps(dict(zip(feed.column_names, values, strict=True)), ensure_ascii=False)
            digest.update(raw.encode())
            builder.add(row_number, values, raw)
            if cursor_value is not None:
                if new_cursor is None or cursor_value > new_cursor:
                    new_cursor, keys_at_new = cursor_value, [key]
                elif cursor_value == new_cursor:
                    keys_at_new.append(key)
    next_cursor = (new_cursor, keys_at_new) if new_cursor is not None else None
    return builder.build(), digest.hexdigest(), next_cursor
