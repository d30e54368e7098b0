"""A SQLite department table read by DuckDB's SQLite scanner, as the text the SQLAlchemy read gives.

Why: over SQLAlchemy every value of a fetch becomes a Python object and then text (sqlite3's row fetch,
SQLAlchemy's result processors, ``sql_feed._as_text``): an insurance table's 6M changed rows a night at
10M residents took 48 s against 10 s for DuckDB's scanner reading the same rows (bench/RESULTS.md,
stop 40). The scanner fills Arrow columns directly.

Only where the text is the same, value for value, as ``sql_feed``'s SQLAlchemy path would give, which is
the reference. So the scanner is used only when every column the feed reads is of a type whose text it
renders exactly (``column_render``): text (as stored), whole numbers (their digits), and decimals
(``NUMERIC(p, s)`` with ``s`` of at most 6 decimals: SQLAlchemy's ``'%.{s}f' % value`` through
``Decimal``, which DuckDB's ``printf`` gives identically below 1e15, checked on 270k values of every
kind in tests/test_sqlite_scan.py). SQLite stores any type in any column: the scanner's typed read
raises on a value of another storage class (a blob among texts, a text among numbers), and the
rendering raises on a decimal outside that range; either refuses the scan (``ScanRefused``) and the
caller reads the table over SQLAlchemy as before. Dates, times, floats, booleans, JSON, a collation on
the cursor or a key, and any other backend also go over SQLAlchemy.

The cursor semantics are ``sql_feed``'s: ``cursor >= value`` on a text cursor column (compared as
bytes, SQLite's BINARY collation), ordered by the cursor and the key with NULLs first as SQLite orders
them. DuckDB reads an attached SQLite file in one transaction on one connection, so the fetch sees one
state of the table, as one SQLAlchemy statement does.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from citybrain import duckdb_extensions, settings

if TYPE_CHECKING:
    import pyarrow as pa

# The decimals of a NUMERIC column rendered by DuckDB's printf: str(Decimal) writes zero with more than six
# as '0E-7'; SQLAlchemy's default scale for a NUMERIC without one is 10, so such a column is read over it.
MAX_DECIMALS = 6
# DuckDB's printf('%.6f') is exact below this magnitude (above, it prints a shorter expansion than Python).
MAX_DECIMAL_MAGNITUDE = 1e15
# The scan's memory when the warehouse sets none (CITYBRAIN_DUCKDB_MEMORY_LIMIT); past it, the sort spills.
SCAN_MEMORY_LIMIT = "1GB"
# The DuckDB type the scanner gives each kind of column; any other and the table is read over SQLAlchemy.
SCANNED_TYPES = {"text": "VARCHAR", "integer": "BIGINT", "decimal": "DOUBLE"}


class ScanRefused(Exception):
    """The scanner cannot read this fetch as the SQLAlchemy path would; read it over SQLAlchemy."""


def _kind(column: sa.Column, dialect) -> str | None:
    """'text', 'integer' or 'decimal' for a column the scanner can render exactly; None otherwise."""
    kind = column.type
    if isinstance(kind, sa.String) and kind.result_processor(dialect, None) is None:
        return "text"
    if isinstance(kind, sa.Integer) and kind.result_processor(dialect, None) is None:
        return "integer"
    if (
        type(kind) in (sa.Numeric, sa.NUMERIC, sa.DECIMAL)
        and kind.asdecimal
        and kind.scale is not None
        and 0 <= kind.scale <= MAX_DECIMALS
    ):
        return "decimal"
    return None


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def column_render(name: str, kind: str, scale: int | None) -> str:
    """The DuckDB expression of a scanned column's text, as ``sql_feed._as_text`` gives the value that
    SQLAlchemy returns for it: a text as is, an integer's digits, a decimal as ``str(Decimal('%.{s}f'
    % value))``. A decimal printf cannot render exactly raises (the query fails, the scan is refused)."""
    column = _quote(name)
    if kind == "text":
        return column
    if kind == "integer":
        return f"CAST({column} AS VARCHAR)"
    return (
        f"CASE WHEN {column} IS NULL THEN NULL"
        f" WHEN abs({column}) < {MAX_DECIMAL_MAGNITUDE:.0f} THEN printf('%.{scale}f', {column})"
        f" ELSE error('decimal out of the rendered range') END"
    )


@dataclass(frozen=True)
class SqliteScan:
    """What a fetch of ``table`` through the scanner selects, given the column kinds."""

    database: str
    table: str
    columns: list[str]
    kinds: list[str]
    scales: list[int | None]
    cursor: str
    key: list[str]

    def query(self, since: bool) -> str:
        renders = ", ".join(
            f"{column_render(c, k, s)} AS {_quote(c)}"
            for c, k, s in zip(self.columns, self.kinds, self.scales, strict=True)
        )
        order = ", ".join(f"{_quote(c)} NULLS FIRST" for c in [self.cursor, *self.key])
        where = f" WHERE {_quote(self.cursor)} >= $since" if since else ""
        return f"SELECT {renders} FROM src.{_quote(self.table)}{where} ORDER BY {order}"

    def chunks(self, since: str | None, size: int) -> Iterator[list[pa.Array]]:
        """The fetch's columns as Arrow strings, ``size`` rows at a time (the last chunk fewer)."""
        import duckdb

        con = duckdb.connect(config=_scan_config())
        try:
            if duckdb_extensions.load(con, "sqlite_scanner") is None:
                raise ScanRefused("the sqlite_scanner extension is not installed")
            con.execute(
                f"ATTACH '{self.database.replace(chr(39), chr(39) * 2)}' AS src (TYPE sqlite, READ_ONLY)"
            )
            described = {r[0]: r[1] for r in con.execute(f"DESCRIBE src.{_quote(self.table)}").fetchall()}
            for column, kind in zip(self.columns, self.kinds, strict=True):
                if described.get(column) != SCANNED_TYPES[kind]:
                    raise ScanRefused(f"the scanner reads {column!r} as {described.get(column)}, not {kind}")
            params = {"since": since} if since is not None else None
            reader = con.execute(self.query(since is not None), params).to_arrow_reader(size)
            yield from _exact_chunks(reader, size)
        except duckdb.Error as exc:
            raise ScanRefused(str(exc).splitlines()[0]) from None
        finally:
            con.close()


def _scan_config() -> dict[str, str]:
    """The scan's own in-memory DuckDB: no downloads; at most SCAN_MEMORY_LIMIT of memory (less if the
    warehouse's limit is less) and a temporary directory always, so the sort of a first fetch (12M rows at
    10M residents) spills to disk instead of growing with the table beside the night's other steps."""
    config = settings.duckdb_config()
    configured = config.get("memory_limit")
    cap = settings.duckdb_size_bytes(SCAN_MEMORY_LIMIT)
    if configured is None or (settings.duckdb_size_bytes(configured) or 0) > cap:
        config["memory_limit"] = SCAN_MEMORY_LIMIT
    config.setdefault("temp_directory", str(Path(tempfile.gettempdir()) / "citybrain-sqlite-scan"))
    return {**duckdb_extensions.NO_DOWNLOAD, **config}


def plan(
    engine: sa.Engine, table: sa.Table, columns: list[str], cursor: str, key: list[str]
) -> SqliteScan | None:
    """The scan of ``columns`` of ``table`` when it can give the SQLAlchemy path's text; None when not (a
    backend other than a SQLite file, a column type it does not render, a collation where it compares)."""
    url = engine.url
    database = url.database
    if (
        url.get_backend_name() != "sqlite"
        or not database
        or database == ":memory:"
        or database.startswith("file:")
    ):
        return None
    if table.schema:
        return None
    kinds = [_kind(table.c[c], engine.dialect) for c in columns]
    if None in kinds:
        return None
    if _kind(table.c[cursor], engine.dialect) != "text":
        return None  # SQLite compares a text cursor with a number column by affinity; DuckDB would not
    if _declares_collation(engine, table.name):
        return None
    scales = [table.c[c].type.scale if k == "decimal" else None for c, k in zip(columns, kinds, strict=True)]
    return SqliteScan(database, table.name, columns, kinds, scales, cursor, key)


def _declares_collation(engine: sa.Engine, name: str) -> bool:
    """Whether the table's CREATE statement names a collation anywhere: SQLite would compare and order a
    text cursor or key by it (NOCASE, RTRIM), DuckDB by bytes. SQLAlchemy does not reflect SQLite's
    collations, so the statement is read."""
    with engine.connect() as con:
        sql = con.execute(
            sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :name"), {"name": name}
        ).scalar()
    return sql is None or "collate" in sql.lower()


def _exact_chunks(reader, size: int) -> Iterator[list[pa.Array]]:
    """The reader's rows in chunks of exactly ``size`` (the last fewer), each column one Arrow string
    array: the same chunks as a SQLAlchemy fetch of ``size`` rows, so the fetch's hash is the same."""
    import pyarrow as pa

    held: list[pa.RecordBatch] = []
    rows = 0
    for batch in reader:
        if batch.num_rows == 0:
            continue
        held.append(batch)
        rows += batch.num_rows
        while rows >= size:
            table = pa.Table.from_batches(held)
            yield _columns(table.slice(0, size))
            rest = table.slice(size)
            held, rows = rest.to_batches(), rest.num_rows
    if rows:
        yield _columns(pa.Table.from_batches(held))


def _columns(table: pa.Table) -> list[pa.Array]:
    import pyarrow as pa

    return [column.combine_chunks().cast(pa.string()) for column in table.columns]
