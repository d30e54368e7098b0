"""Reading a department database table incrementally over SQLAlchemy (SQLite, PostgreSQL, MySQL/MariaDB).

The cursor is the last ``updated_at`` read plus the keys already read at exactly that value: the next
fetch asks for ``updated_at >= cursor`` and drops those keys, so a row committed later with the same
timestamp is not missed and nothing already read is read twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, NoSuchTableError, OperationalError

from citybrain.catalog import Feed, SqlDelivery
from citybrain.ingest import sqlite_scan
from citybrain.ingest.batch import Batch, BatchBuilder, DeliveryError, to_text

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)
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
    scan = sqlite_scan.plan(engine, table, feed.column_names, delivery.cursor, feed.key)
    if scan is not None:
        fetch = _Fetch(feed, delivery, source, cursor)
        try:
            for arrays in scan.chunks(cursor[0] if cursor else None, delivery.batch_size):
                fetch.add_arrays(arrays)
            return fetch.result()
        except sqlite_scan.ScanRefused as exc:
            log.info("%s: read over SQLAlchemy, the SQLite scanner refused the fetch: %s", source, exc)
    cursor_column = table.c[delivery.cursor]
    query = sa.select(*[table.c[c] for c in feed.column_names]).order_by(
        cursor_column, *[table.c[k] for k in feed.key]
    )
    if cursor is not None:
        query = query.where(cursor_column >= _cursor_bind(cursor_column, cursor[0]))
    fetch = _Fetch(feed, delivery, source, cursor)
    with engine.connect() as con:
        result = con.execution_options(stream_results=True, yield_per=delivery.batch_size).execute(query)
        for columns in column_chunks(result, delivery.batch_size):
            fetch.add_chunk(columns)
    return fetch.result()


def column_chunks(result: sa.CursorResult, size: int) -> Iterator[list[list]]:
    """The result's rows ``size`` at a time, as columns of the values SQLAlchemy's rows would hold.

    A ``Row`` per record is a quarter of a fetch's time (4 µs each; 6M records a night at 10M
    residents): the driver's tuples are taken as they come (``_fetchmany_impl``, what ``partitions()``
    calls before it builds rows) and SQLAlchemy's own result processors (a SQLite NUMERIC to Decimal,
    a DATETIME to datetime) applied column by column. Should a SQLAlchemy release rename either
    internal, the rows are built as before (tests/test_sql_feed.py fails loudly on the pinned one)."""
    fetch_many = getattr(result, "_fetchmany_impl", None)
    processors = getattr(result._metadata, "_processors", None)
    if fetch_many is None or processors is None:
        for rows in result.partitions(size):
            yield [list(values) for values in zip(*rows, strict=True)]
        return
    while rows := fetch_many(size):
        yield [
            list(values) if process is None else list(map(process, values))
            for process, values in zip(processors, zip(*rows, strict=True), strict=True)
        ]


class _Fetch:
    """One fetch, read in chunks of the delivery's ``batch_size`` rows (a server-side cursor where the
    driver has one, or the SQLite scanner's Arrow columns): the values as text columns, the JSON of a row
    (its raw text) made only for the rows quarantined, the keys only for the rows at the cursor."""

    def __init__(self, feed: Feed, delivery: SqlDelivery, source: str, cursor):
        self.feed = feed
        self.cursor = cursor
        self.builder = BatchBuilder(source, feed.column_names, feed.key)
        self.key_index = [feed.column_names.index(k) for k in feed.key]
        self.cursor_index = feed.column_names.index(delivery.cursor)
        self.digest = hashlib.sha256()
        self.row_number = 0
        self.seen_at_cursor: set[str] = set(cursor[1]) if cursor else set()
        self.new_cursor, self.keys_at_new = (cursor[0], list(cursor[1])) if cursor else (None, [])

    def _key(self, arrays: list[pa.Array], i: int) -> str:
        return json.dumps([arrays[k][i].as_py() for k in self.key_index], ensure_ascii=False)

    def _rows_at(self, arrays: list[pa.Array], value: str):
        """Indices of the rows whose cursor is exactly ``value``."""
        import numpy as np
        import pyarrow.compute as pc

        equal = pc.fill_null(pc.equal(arrays[self.cursor_index], value), False)
        return np.flatnonzero(equal.to_numpy(zero_copy_only=False))

    def add_chunk(self, values: list[list]) -> None:
        """One chunk of the fetch, as columns of source values (``column_chunks``)."""
        import pyarrow as pa

        self.add_arrays([pa.array(_as_text(column), type=pa.string()) for column in values])

    def add_arrays(self, arrays: list[pa.Array]) -> None:
        """One chunk of the fetch, as the feed's columns of text (Arrow strings)."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        if not arrays:
            return
        if self.cursor is not None and self.seen_at_cursor:  # rows read last time at exactly the cursor
            at = self._rows_at(arrays, self.cursor[0])
            skip = [i for i in at if self._key(arrays, int(i)) in self.seen_at_cursor]
            if skip:
                keep = np.ones(len(arrays[0]), dtype=bool)
                keep[skip] = False
                mask = pa.array(keep)
                arrays = [a.filter(mask) for a in arrays]
        n = len(arrays[0])
        if n == 0:
            return
        top = pc.max(arrays[self.cursor_index]).as_py()  # text order: code points, as Python's max
        if top is not None:
            if self.new_cursor is None or top > self.new_cursor:
                self.new_cursor, self.keys_at_new = top, []
            if top == self.new_cursor:
                self.keys_at_new += [self._key(arrays, int(i)) for i in self._rows_at(arrays, top)]
        names = self.feed.column_names
        _digest_update(self.digest, arrays)
        numbers = np.arange(self.row_number + 1, self.row_number + n + 1, dtype=np.int64)
        self.row_number += n
        self.builder.add_columns(
            arrays,
            numbers,
            lambda i: json.dumps(
                dict(zip(names, (a[i].as_py() for a in arrays), strict=True)), ensure_ascii=False
            ),
        )

    def next_cursor(self) -> tuple[str, list[str]] | None:
        return (self.new_cursor, self.keys_at_new) if self.new_cursor is not None else None

    def result(self) -> tuple[Batch, str, tuple[str, list[str]] | None]:
        """What ``fetch_incremental`` returns: the batch, the content hash and the new cursor."""
        return self.builder.build(), self.digest.hexdigest(), self.next_cursor()


def _digest_update(digest, arrays) -> None:
    """Hash a chunk's text columns: each value's length in bytes (-1 for NULL), then the values' UTF-8,
    column by column. The same rows fetched in the same chunks give the same hash."""
    import numpy as np
    import pyarrow.compute as pc

    for array in arrays:
        digest.update(pc.fill_null(pc.binary_length(array), -1).to_numpy().astype("<i8").tobytes())
        _, offsets, data = array.buffers()
        if data is not None:
            ends = np.frombuffer(offsets, dtype=np.int32)
            digest.update(memoryview(data)[int(ends[array.offset]) : int(ends[array.offset + len(array)])])


_PLAIN_TYPES = {str, type(None)}
# Exact types whose ``to_text`` is ``str(value)``: no bool (a subclass of int), no float (its own rule).
_STR_TYPES = {int, Decimal, type(None)}


def _as_text(values: list) -> list[str | None]:
    """A column of source values as text (``to_text``), without ``to_text``'s chain of type tests per value
    for the columns of one common type: text already, whole numbers and decimals (a NUMERIC column),
    timestamps, dates. Any other mix goes through ``to_text`` value by value."""
    types = set(map(type, values))
    if types <= _PLAIN_TYPES:
        return values
    if types <= _STR_TYPES:
        return [None if v is None else str(v) for v in values]
    if types <= {datetime, type(None)}:
        return [None if v is None else v.isoformat(sep=" ") for v in values]
    if types <= {date, type(None)}:  # exact type: a datetime is a date too, and has its own branch
        return [None if v is None else v.isoformat() for v in values]
    return [to_text(v) for v in values]
