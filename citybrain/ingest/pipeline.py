"""Ingest one feed (one partition of it) into the raw layer: find, read, write, account.

Kept free of Dagster so it can be tested and benchmarked on its own; the Dagster assets in
``assets/ingestion.py`` call these functions and turn the result into metadata.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import requests
import sqlalchemy as sa

from citybrain.catalog import Feed, FileDelivery
from citybrain.ingest import http_feed, sql_feed
from citybrain.ingest.batch import DeliveryError
from citybrain.ingest.file_readers import read_delivery
from citybrain.ingest.landing import DeliveredFile, delivery_pattern, find_deliveries
from citybrain.ingest.warehouse import (
    LogEntry,
    current_row_count,
    find_current_load,
    has_log,
    load_cursor,
    log_without_rows,
    open_warehouse,
    utcnow,
    write_batch,
)


class IngestionFailed(Exception):
    """At least one delivery of the feed was unusable; the others were still processed."""

    def __init__(self, feed_id: str, partition_key: str | None, problems: list[str], result: IngestionResult):
        where = f"{feed_id}" + (f" [{partition_key}]" if partition_key else "")
        super().__init__(f"{where}: " + "; ".join(problems))
        self.problems = problems
        self.result = result


@dataclass
class IngestionResult:
    feed_id: str
    partition_key: str | None
    entries: list[LogEntry] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)  # deliveries already loaded earlier
    problems: list[str] = field(default_factory=list)
    rows_current: int = 0

    @property
    def rows_received(self) -> int:
        return sum(e.rows_received for e in self.entries)

    @property
    def rows_loaded(self) -> int:
        return sum(e.rows_loaded for e in self.entries)

    @property
    def rows_quarantined(self) -> int:
        return sum(e.rows_quarantined for e in self.entries)

    def quarantined_by_reason(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for e in self.entries:
            for reason, n in e.quarantined_by_reason.items():
                total[reason] = total.get(reason, 0) + n
        return dict(sorted(total.items()))

    def raise_for_problems(self) -> IngestionResult:
        if self.problems:
            raise IngestionFailed(self.feed_id, self.partition_key, self.problems, self)
        return self


def ingest_files(
    feed: Feed, landing: Path, warehouse: Path, partition_key: str | None, batch_id: str
) -> IngestionResult:
    """Load every new delivered file of the partition; already-loaded bytes are skipped."""
    assert isinstance(feed.delivery, FileDelivery)
    result = IngestionResult(feed.id, partition_key)
    refused: list[DeliveryError] = []
    try:
        files = find_deliveries(feed, landing, partition_key, refused)
    except DeliveryError as exc:  # the feed's path itself is unusable: nothing is read, the refusal logged
        files = []
        refused.append(exc)
    if not files and not refused and not result.problems:
        what = f"partition {partition_key}" if partition_key else "the feed"
        result.problems.append(
            f"no delivery for {what}: nothing matches {delivery_pattern(feed, partition_key)!r} in {landing}"
        )
    with open_warehouse(warehouse) as con:
        already = {f.sha256: find_current_load(con, feed.id, f.sha256) for f in files}

    def log_file(con, delivered: DeliveredFile, started_at, status: str, message: str, duplicate_of=None):
        """Log a delivered file that loads no rows (a duplicate or a failure)."""
        return log_without_rows(
            con,
            feed,
            status=status,
            partition_key=partition_key,
            source_file=delivered.relative,
            sha256=delivered.sha256,
            file_bytes=delivered.size,
            batch_id=batch_id,
            started_at=started_at,
            message=message,
            duplicate_of=duplicate_of,
        )

    for problem in refused:  # refused files are logged as failed; the feed's other files still load
        result.problems.append(str(problem))
        with open_warehouse(warehouse) as con:
            _log_refused(con, feed, partition_key, problem, batch_id, utcnow())
    for delivered in files:
        started = utcnow()
        current = already.get(delivered.sha256)
        if current is not None:
            loaded_name, _ = current
            if loaded_name == delivered.relative:
                result.unchanged.append(delivered.relative)
                continue
            with open_warehouse(warehouse) as con:
                if not has_log(con, feed.id, delivered.relative, delivered.sha256, "duplicate"):
                    message = f"same bytes as {loaded_name}, already loaded; not loaded again"
                    result.entries.append(
                        log_file(con, delivered, started, "duplicate", message, loaded_name)
                    )
                else:
                    result.unchanged.append(delivered.relative)
            continue
        try:
            batch = read_delivery(feed, delivered.path, delivered.relative)
        except DeliveryError as exc:
            result.problems.append(str(exc))
            with open_warehouse(warehouse) as con:
                log_file(con, delivered, started, "failed", exc.problem)
            continue
        except Exception as exc:  # noqa: BLE001 - a reader bug must still name the file and spare the others
            problem = f"unexpected {type(exc).__name__} while reading: {exc}"
            result.problems.append(f"{delivered.relative}: {problem}")
            with open_warehouse(warehouse) as con:
                log_file(con, delivered, started, "failed", problem)
            continue
        with open_warehouse(warehouse) as con:
            # Checked again under the lock: another run (or another name in this run) may have loaded
            # these bytes while this one parsed.
            current = find_current_load(con, feed.id, delivered.sha256)
            if current is not None:
                if current[0] == delivered.relative:
                    result.unchanged.append(delivered.relative)
                else:
                    message = f"same bytes as {current[0]}, already loaded; not loaded again"
                    result.entries.append(log_file(con, delivered, started, "duplicate", message, current[0]))
                continue
            entry = write_batch(
                con,
                feed,
                batch,
                partition_key=partition_key,
                sha256=delivered.sha256,
                file_bytes=delivered.size,
                batch_id=batch_id,
                started_at=started,
                replaces_earlier=True,
            )
        result.entries.append(entry)
    with open_warehouse(warehouse) as con:
        result.rows_current = current_row_count(con, feed, partition_key)
    return result


def _log_refused(con, feed, partition_key, problem: DeliveryError, batch_id: str, started_at) -> None:
    """Log a delivery refused before any row was read (named by ``problem.source``) as failed."""
    log_without_rows(
        con,
        feed,
        status="failed",
        partition_key=partition_key,
        source_file=problem.source,
        sha256=None,
        file_bytes=None,
        batch_id=batch_id,
        started_at=started_at,
        message=problem.problem,
    )


def _ingest_fetched(feed, warehouse, partition_key, batch_id, started, fetch) -> IngestionResult:
    result = IngestionResult(feed.id, partition_key)
    with open_warehouse(warehouse) as con:
        cursor = load_cursor(con, feed.id, partition_key)
    try:
        batch, digest, new_cursor = fetch(cursor)
    except DeliveryError as exc:
        result.problems.append(str(exc))
        with open_warehouse(warehouse) as con:
            _log_refused(con, feed, partition_key, exc, batch_id, started)
            result.rows_current = current_row_count(con, feed, partition_key)
        return result
    with open_warehouse(warehouse) as con:
        result.entries.append(
            write_batch(
                con,
                feed,
                batch,
                partition_key=partition_key,
                sha256=digest,
                file_bytes=None,
                batch_id=batch_id,
                started_at=started,
                replaces_earlier=False,
                cursor=new_cursor,
            )
        )
        result.rows_current = current_row_count(con, feed, partition_key)
    return result


def ingest_sql(feed: Feed, url: str, warehouse: Path, batch_id: str) -> IngestionResult:
    """Fetch the rows of a department table changed since the stored cursor."""
    started = utcnow()
    engine = sa.create_engine(url, pool_pre_ping=True)
    try:
        return _ingest_fetched(
            feed,
            warehouse,
            None,
            batch_id,
            started,
            lambda cursor: sql_feed.fetch_incremental(engine, feed, cursor),
        )
    finally:
        engine.dispose()


def ingest_http(
    feed: Feed,
    base_url: str,
    warehouse: Path,
    partition_key: str,
    batch_id: str,
    session: requests.Session | None = None,
    timeout_seconds: float | None = None,
) -> IngestionResult:
    """Fetch one day of an API feed, only what changed since the stored cursor of that day."""
    started = utcnow()
    session = session or http_feed.make_session()
    return _ingest_fetched(
        feed,
        warehouse,
        partition_key,
        batch_id,
        started,
        lambda cursor: http_feed.fetch_day(session, base_url, feed, partition_key, cursor, timeout_seconds),
    )
