"""Writing deliveries into the raw layer of the DuckDB warehouse, one transaction per delivery.

DuckDB allows one writing process per file, and Dagster may run several ingestion steps in parallel
processes, so every connection is taken under an exclusive file lock (``<warehouse>.lock``): steps
parse in parallel and queue only for the short write. A delivery's rows, its quarantined rows, its
log entry, the superseding of an earlier version and its cursor commit together or not at all.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from citybrain.catalog import Feed
from citybrain.ingest.batch import Batch
from citybrain.warehouse import Warehouse

if TYPE_CHECKING:
    import duckdb

LINEAGE_COLUMNS = {
    "_partition": "VARCHAR",
    "_source_file": "VARCHAR",
    "_file_sha256": "VARCHAR",
    "_row_number": "BIGINT",
    "_batch_id": "VARCHAR",
    "_loaded_at": "TIMESTAMPTZ",
}
HISTORY_COLUMNS = {"_superseded_by_batch": "VARCHAR", "_superseded_at": "TIMESTAMPTZ"}


def sql_text(name: str) -> str:
    return resources.files("citybrain.ingest").joinpath("sql", name).read_text(encoding="utf-8")


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def run_sql(con: duckdb.DuckDBPyConnection, sql: str, params: dict | None = None) -> list[tuple]:
    """Run each statement of ``sql`` with the named parameters it mentions; return the last result."""
    result: list[tuple] = []
    without_comments = re.sub(r"--[^\n]*", "", sql)  # our .sql files keep no '--' inside string literals
    for body in (s.strip() for s in without_comments.split(";")):
        if not body:
            continue
        used = {k: v for k, v in (params or {}).items() if re.search(rf"\${k}\b", body)}
        result = con.execute(body, used).fetchall() if used else con.execute(body).fetchall()
    return result


@contextmanager
def open_warehouse(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """An exclusive read-write connection with the raw-layer bookkeeping tables in place."""
    with Warehouse.from_settings(path).connect() as con:
        run_sql(con, sql_text("schema.sql"))
        yield con


def ensure_feed_tables(con: duckdb.DuckDBPyConnection, feed: Feed) -> None:
    """Create raw.<feed> and raw_history.<feed>; add columns the catalog gained since (never drop)."""
    table = quote_ident(feed.id)
    raw_columns = {c: "VARCHAR" for c in feed.column_names} | LINEAGE_COLUMNS
    for schema, columns in (("raw", raw_columns), ("raw_history", raw_columns | HISTORY_COLUMNS)):
        ddl = ", ".join(f"{quote_ident(c)} {t}" for c, t in columns.items())
        con.execute(f"CREATE TABLE IF NOT EXISTS {schema}.{table} ({ddl})")
        existing = {
            r[0]
            for r in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ?",
                [schema, feed.id],
            ).fetchall()
        }
        for column, column_type in columns.items():
            if column not in existing:
                con.execute(f"ALTER TABLE {schema}.{table} ADD COLUMN {quote_ident(column)} {column_type}")


@dataclass
class LogEntry:
    log_id: str
    feed_id: str
    partition_key: str | None
    source_file: str
    file_sha256: str | None
    status: str
    rows_received: int
    rows_loaded: int
    rows_quarantined: int
    quarantined_by_reason: dict[str, int]
    duplicate_of: str | None = None
    message: str | None = None
    superseded_by_batch: str | None = (
        None  # set when the delivery went straight to history (an older snapshot)
    )


def find_current_load(con: duckdb.DuckDBPyConnection, feed_id: str, sha256: str) -> tuple[str, str] | None:
    """(source_file, batch_id) of the current load of these exact bytes, if any."""
    row = con.execute(
        "SELECT source_file, batch_id FROM raw.ingestion_log WHERE feed_id = ? AND file_sha256 = ? AND status = 'loaded'",
        [feed_id, sha256],
    ).fetchone()
    return (row[0], row[1]) if row else None


def find_earlier_load(con: duckdb.DuckDBPyConnection, feed_id: str, sha256: str) -> tuple[str, str] | None:
    """(source_file, status) of a load of these exact bytes, current ('loaded') or replaced since
    ('superseded'): bytes that were ever loaded are never loaded again (docs/INGESTION.md)."""
    row = con.execute(
        """
        SELECT source_file, status FROM raw.ingestion_log
        WHERE feed_id = ? AND file_sha256 = ? AND status IN ('loaded', 'superseded')
        ORDER BY status = 'loaded' DESC, finished_at DESC LIMIT 1
        """,
        [feed_id, sha256],
    ).fetchone()
    return (row[0], row[1]) if row else None


def current_loads(con: duckdb.DuckDBPyConnection, feed_id: str) -> list[tuple[str, str]]:
    """(source_file, batch_id) of every current load of the feed: for a full snapshot, the snapshot."""
    return con.execute(
        "SELECT source_file, batch_id FROM raw.ingestion_log WHERE feed_id = ? AND status = 'loaded' ORDER BY 1",
        [feed_id],
    ).fetchall()


def has_log(con: duckdb.DuckDBPyConnection, feed_id: str, source_file: str, sha256: str, status: str) -> bool:
    return (
        con.execute(
            "SELECT count(*) FROM raw.ingestion_log WHERE feed_id = ? AND source_file = ? AND file_sha256 = ? AND status = ?",
            [feed_id, source_file, sha256, status],
        ).fetchone()[0]
        > 0
    )


def _insert_log(
    con, entry: LogEntry, provider: str, file_bytes: int | None, batch_id: str, started_at: datetime
) -> None:
    con.execute(
        """
        INSERT INTO raw.ingestion_log (log_id, feed_id, provider, partition_key, source_file, file_sha256, file_bytes,
            batch_id, status, rows_received, rows_loaded, rows_quarantined, quarantined_by_reason, duplicate_of,
            message, superseded_by_batch, superseded_at, started_at, finished_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, CASE WHEN ? IS NULL THEN NULL ELSE now() END, ?, now())
        """,
        [
            entry.log_id,
            entry.feed_id,
            provider,
            entry.partition_key,
            entry.source_file,
            entry.file_sha256,
            file_bytes,
            batch_id,
            entry.status,
            entry.rows_received,
            entry.rows_loaded,
            entry.rows_quarantined,
            json.dumps(entry.quarantined_by_reason),
            entry.duplicate_of,
            entry.message,
            entry.superseded_by_batch,
            entry.superseded_by_batch,
            started_at,
        ],
    )


def write_batch(
    con: duckdb.DuckDBPyConnection,
    feed: Feed,
    batch: Batch,
    *,
    partition_key: str | None,
    sha256: str,
    file_bytes: int | None,
    batch_id: str,
    started_at: datetime,
    replaces_earlier: bool,
    cursor: tuple[str, list[str]] | None = None,
    into_history_of: tuple[str, str] | None = None,
    begun: bool = False,
) -> LogEntry:
    """Load one delivery atomically. With ``replaces_earlier`` the loads it corrects move to history.

    ``into_history_of`` = (source_file, batch_id) of a newer current snapshot: the delivery is older than it,
    so its rows go straight to ``raw_history`` as superseded by that load and the current rows stay.
    ``begun``: ``begin_delivery`` has already opened the transaction (and moved what the delivery replaces)
    with the same arguments, while the delivery was being read; this finishes it."""
    import pyarrow as pa  # here, not at module top: definitions load must not import pyarrow

    table = quote_ident(feed.id)
    messages = list(batch.warnings)
    if into_history_of is not None:
        messages.insert(
            0,
            f"older than the current snapshot {into_history_of[0]}: kept in history, never made current",
        )
    entry = LogEntry(
        log_id=str(uuid.uuid4()),
        feed_id=feed.id,
        partition_key=partition_key,
        source_file=batch.source,
        file_sha256=sha256,
        status="loaded" if into_history_of is None else "superseded",
        rows_received=batch.rows_received,
        rows_loaded=batch.rows_loaded,
        rows_quarantined=batch.rows_quarantined,
        quarantined_by_reason=batch.quarantined_by_reason(),
        message="; ".join(messages) or None,
        superseded_by_batch=None if into_history_of is None else into_history_of[1],
    )
    if not begun:
        begin_delivery(
            con,
            feed,
            partition_key=partition_key,
            source_file=batch.source,
            batch_id=batch_id,
            replaces_earlier=replaces_earlier and into_history_of is None,
        )
    try:
        incoming = batch.sql_source(con, "incoming")
        columns = ", ".join(quote_ident(c) for c in feed.column_names)
        lineage = "_partition, _source_file, _file_sha256, _row_number, _batch_id, _loaded_at"
        values = "$partition, $source_file, $sha, _row_number, $batch_id, now()"
        params = {
            "partition": partition_key,
            "source_file": batch.source,
            "sha": sha256,
            "batch_id": batch_id,
        }
        if into_history_of is None:
            con.execute(
                f"INSERT INTO raw.{table} ({columns}, {lineage}) SELECT {columns}, {values} FROM {incoming}",
                params,
            )
        else:
            con.execute(
                f"INSERT INTO raw_history.{table} ({columns}, {lineage}, _superseded_by_batch, _superseded_at) "
                f"SELECT {columns}, {values}, $newer_batch, now() FROM {incoming}",
                params | {"newer_batch": into_history_of[1]},
            )
        con.unregister("incoming")  # nothing to do when the rows came from a spill file
        if batch.quarantined:
            quarantine = pa.table(
                {
                    "row_number": [q.row_number for q in batch.quarantined],
                    "reason": [q.reason for q in batch.quarantined],
                    "detail": [q.detail for q in batch.quarantined],
                    "raw_text": [q.raw_text for q in batch.quarantined],
                }
            )
            con.register("quarantined_rows", quarantine)
            con.execute(
                """
                INSERT INTO raw.quarantine
                SELECT $log_id, $feed_id, $partition, $source_file, $sha, row_number, reason, detail, raw_text,
                       $batch_id, now()
                FROM quarantined_rows
                """,
                {
                    "log_id": entry.log_id,
                    "feed_id": feed.id,
                    "partition": partition_key,
                    "source_file": batch.source,
                    "sha": sha256,
                    "batch_id": batch_id,
                },
            )
            con.unregister("quarantined_rows")
        _insert_log(con, entry, feed.provider, file_bytes, batch_id, started_at)
        if cursor is not None:
            save_cursor(con, feed.id, partition_key, cursor[0], cursor[1], batch_id)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return entry


def begin_delivery(
    con: duckdb.DuckDBPyConnection,
    feed: Feed,
    *,
    partition_key: str | None,
    source_file: str,
    batch_id: str,
    replaces_earlier: bool,
) -> None:
    """Open a delivery's transaction and, with ``replaces_earlier``, move the rows of the loads it replaces
    to history: the part of ``write_batch`` that needs no row of the delivery. For a full snapshot that is
    the whole previous snapshot, so ``ingest_files`` runs it while the new one is being read. On an error
    the transaction is rolled back."""
    import pyarrow as pa

    ensure_feed_tables(con, feed)
    con.execute("BEGIN TRANSACTION")
    try:
        if not replaces_earlier:
            return
        superseded = run_sql(
            con,
            sql_text("current_loads.sql"),
            {
                "feed_id": feed.id,
                "replace_all": feed.snapshot == "full",
                "partition_key": partition_key,
                "source_file": source_file,
            },
        )
        if superseded:
            superseded_table = pa.table(
                {
                    name: [row[i] for row in superseded]
                    for i, name in enumerate(["log_id", "source_file", "file_sha256"])
                }
            )
            con.register("superseded", superseded_table)
            # a full snapshot's current rows are those of its current loads, all superseded here: moved
            # without selecting them by load (the join cost a quarter of the move; bench/RESULTS.md, stop 42)
            move = "supersede_all.sql" if feed.snapshot == "full" else "supersede.sql"
            run_sql(con, sql_text(move).format(table=quote_ident(feed.id)), {"batch_id": batch_id})
            con.unregister("superseded")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def log_without_rows(
    con: duckdb.DuckDBPyConnection,
    feed: Feed,
    *,
    status: str,
    partition_key: str | None,
    source_file: str,
    sha256: str | None,
    file_bytes: int | None,
    batch_id: str,
    started_at: datetime,
    message: str,
    duplicate_of: str | None = None,
) -> LogEntry:
    """Record a delivery that loaded nothing: a failed file or a duplicate of one already loaded."""
    entry = LogEntry(
        log_id=str(uuid.uuid4()),
        feed_id=feed.id,
        partition_key=partition_key,
        source_file=source_file,
        file_sha256=sha256,
        status=status,
        rows_received=0,
        rows_loaded=0,
        rows_quarantined=0,
        quarantined_by_reason={},
        duplicate_of=duplicate_of,
        message=message,
    )
    _insert_log(con, entry, feed.provider, file_bytes, batch_id, started_at)
    return entry


def load_cursor(
    con: duckdb.DuckDBPyConnection, feed_id: str, partition_key: str | None
) -> tuple[str, list[str]] | None:
    row = con.execute(
        "SELECT cursor_value, keys_at_cursor FROM raw.feed_cursor WHERE feed_id = ? AND partition_key = ?",
        [feed_id, partition_key or ""],
    ).fetchone()
    return (row[0], json.loads(row[1])) if row else None


def save_cursor(
    con: duckdb.DuckDBPyConnection,
    feed_id: str,
    partition_key: str | None,
    value: str,
    keys: list[str],
    batch_id: str,
) -> None:
    con.execute(
        "DELETE FROM raw.feed_cursor WHERE feed_id = ? AND partition_key = ?", [feed_id, partition_key or ""]
    )
    con.execute(
        "INSERT INTO raw.feed_cursor VALUES (?, ?, ?, ?, ?, now())",
        [feed_id, partition_key or "", value, json.dumps(keys, ensure_ascii=False), batch_id],
    )


def current_row_count(con: duckdb.DuckDBPyConnection, feed: Feed, partition_key: str | None) -> int:
    ensure_feed_tables(con, feed)
    if partition_key is None:
        return con.execute(f"SELECT count(*) FROM raw.{quote_ident(feed.id)}").fetchone()[0]
    return con.execute(
        f"SELECT count(*) FROM raw.{quote_ident(feed.id)} WHERE _partition = ?", [partition_key]
    ).fetchone()[0]


def utcnow() -> datetime:
    return datetime.now(UTC)
