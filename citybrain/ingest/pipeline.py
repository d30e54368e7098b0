"""Ingest one feed (one partition of it) into the raw layer: find, read, write, account.

Kept free of Dagster so it can be tested and benchmarked on its own; the Dagster assets in
``assets/ingestion.py`` call these functions and turn the result into metadata.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import requests
import sqlalchemy as sa

from citybrain.catalog import Feed, FileDelivery, HttpDelivery
from citybrain.ingest import http_feed, read_ahead, sql_feed
from citybrain.ingest.batch import Batch, DeliveryError, release_unused_arrow_memory
from citybrain.ingest.file_readers import read_delivery
from citybrain.ingest.landing import DeliveredFile, delivery_pattern, find_deliveries, snapshot_order_key
from citybrain.ingest.warehouse import (
    LogEntry,
    begin_delivery,
    current_loads,
    current_row_count,
    find_earlier_load,
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
    missing: bool = False  # nothing delivered at all (also listed in problems)

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
    """Load every new delivered file of the partition; bytes loaded before (current or since superseded) are
    never loaded again, and an older full snapshot goes to history instead of replacing a newer one."""
    assert isinstance(feed.delivery, FileDelivery)
    result = IngestionResult(feed.id, partition_key)
    refused: list[DeliveryError] = []
    try:
        files = find_deliveries(feed, landing, partition_key, refused)
    except DeliveryError as exc:  # the feed's path itself is unusable: nothing is read, the refusal logged
        files = []
        refused.append(exc)
    if not files and not refused and not result.problems:
        result.missing = True
        what = f"partition {partition_key}" if partition_key else "the feed"
        result.problems.append(
            f"no delivery for {what}: nothing matches {delivery_pattern(feed, partition_key)!r} in {landing}"
        )
    order: dict[str, tuple[str, ...]] = {}
    if feed.snapshot == "full":  # oldest snapshot first, so that the newest ends up current
        for delivered in list(files):
            try:
                order[delivered.relative] = snapshot_order_key(feed, delivered.relative)
            except DeliveryError as exc:
                files.remove(delivered)
                refused.append(exc)
        files.sort(key=lambda f: order[f.relative])

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

    def seen_before(con, delivered: DeliveredFile, started_at, load: tuple[str, str]) -> None:
        """Bytes loaded before: unchanged under the same name, else a duplicate logged once."""
        loaded_name, status = load
        if loaded_name == delivered.relative or has_log(
            con, feed.id, delivered.relative, delivered.sha256, "duplicate"
        ):
            result.unchanged.append(delivered.relative)
            return
        when = "already loaded" if status == "loaded" else "loaded before and since superseded"
        message = f"same bytes as {loaded_name}, {when}; not loaded again"
        result.entries.append(log_file(con, delivered, started_at, "duplicate", message, loaded_name))

    def write_delivery(con, delivered: DeliveredFile, batch: Batch, started_at, **options) -> None:
        """Write a delivery that was read (``options``: ``into_history_of``, ``begun``; see ``write_batch``)."""
        result.entries.append(
            write_batch(
                con,
                feed,
                batch,
                partition_key=partition_key,
                sha256=delivered.sha256,
                file_bytes=delivered.size,
                batch_id=batch_id,
                started_at=started_at,
                replaces_earlier=True,
                **options,
            )
        )

    # Each connection costs an open (and a checkpoint at close when it wrote): one before reading, for
    # what needs no reading (refusals, bytes loaded before, the count when nothing is new), and one per
    # new delivery, which also counts the rows current after the last.
    with open_warehouse(warehouse) as con:
        earlier = {f.sha256: find_earlier_load(con, feed.id, f.sha256) for f in files}
        for problem in refused:  # refused files are logged as failed; the feed's other files still load
            result.problems.append(str(problem))
            _log_refused(con, feed, partition_key, problem, batch_id, utcnow())
        for delivered in files:
            if earlier[delivered.sha256] is not None:
                seen_before(con, delivered, utcnow(), earlier[delivered.sha256])
        new = [f for f in files if earlier[f.sha256] is None]
        if not new:
            result.rows_current = current_row_count(con, feed, partition_key)
    for position, delivered in enumerate(new, start=1):
        started = utcnow()
        if feed.snapshot == "full":
            with open_warehouse(warehouse) as con:
                _load_snapshot(
                    con,
                    feed,
                    delivered,
                    order[delivered.relative],
                    partition_key=partition_key,
                    batch_id=batch_id,
                    started=started,
                    result=result,
                    log_file=log_file,
                    seen_before=seen_before,
                    write_delivery=write_delivery,
                )
                if position == len(new):
                    result.rows_current = current_row_count(con, feed, partition_key)
            continue
        batch, failure = _read(feed, delivered, result)  # the previous delivery's rows are let go first
        with open_warehouse(warehouse) as con:
            if failure is not None:
                log_file(con, delivered, started, "failed", failure)
            # Checked again under the lock: another run (or another name in this run) may have loaded
            # these bytes while this one parsed.
            elif (load := find_earlier_load(con, feed.id, delivered.sha256)) is not None:
                seen_before(con, delivered, started, load)
            else:
                write_delivery(con, delivered, batch, started)
            if position == len(new):
                result.rows_current = current_row_count(con, feed, partition_key)
    return result


def _read(feed: Feed, delivered: DeliveredFile, result: IngestionResult) -> tuple[Batch | None, str | None]:
    """Read one delivered file: its batch, or why it could not be read (also added to ``result``)."""
    batch, failure = None, None
    try:
        batch = read_ahead.take(feed, delivered) or read_delivery(feed, delivered.path, delivered.relative)
    except DeliveryError as exc:
        result.problems.append(str(exc))
        failure = exc.problem
    except Exception as exc:  # noqa: BLE001 - a reader bug must still name the file and spare the others
        failure = f"unexpected {type(exc).__name__} while reading: {exc}"
        result.problems.append(f"{delivered.relative}: {failure}")
    release_unused_arrow_memory()
    return batch, failure


def _load_snapshot(
    con,
    feed: Feed,
    delivered: DeliveredFile,
    order_key: tuple[str, ...],
    *,
    partition_key: str | None,
    batch_id: str,
    started,
    result: IngestionResult,
    log_file,
    seen_before,
    write_delivery,
) -> None:  # log_file, seen_before, write_delivery: ingest_files' own, for a delivery of the feed
    """Load one new full snapshot under the warehouse lock, read while the previous one moves to history.

    A new snapshot replaces every current row of the feed, and moving them to ``raw_history`` needs none of
    the new rows: the move runs in DuckDB (which lets go of Python) in a thread of this process, inside the
    delivery's transaction, while this thread reads and checks the file. The transaction commits only with
    the new rows, and rolls back if the file cannot be read, so the previous snapshot stays current then.
    The lock is held while the file is read (for the 10M-resident registry about half a minute): other
    writers wait, but no other run can load the same bytes meanwhile."""
    from concurrent.futures import ThreadPoolExecutor

    if (earlier := find_earlier_load(con, feed.id, delivered.sha256)) is not None:
        seen_before(con, delivered, started, earlier)
        return
    newer = _newer_snapshot(con, feed, order_key)
    if newer is None:  # the delivery becomes current: move the current snapshot while reading
        with ThreadPoolExecutor(1, thread_name_prefix="supersede") as pool:
            moved = pool.submit(
                begin_delivery,
                con,
                feed,
                partition_key=partition_key,
                source_file=delivered.relative,
                batch_id=batch_id,
                replaces_earlier=True,
            )
            batch, failure = _read(feed, delivered, result)
            moved.result()  # the move's own error, if any, is raised (its transaction rolled back)
    else:  # older than the current snapshot: straight to history, nothing moves
        batch, failure = _read(feed, delivered, result)
    if failure is not None:
        if newer is None:
            con.execute("ROLLBACK")
        log_file(con, delivered, started, "failed", failure)
        return
    write_delivery(con, delivered, batch, started, into_history_of=newer, begun=newer is None)


def _newer_snapshot(con, feed: Feed, key: tuple[str, ...]) -> tuple[str, str] | None:
    """The current load of a full-snapshot feed if it is newer than a delivery ordered at ``key``.

    A current load whose name cannot be ordered (loaded before the feed declared its ordering) counts as
    older: the orderable delivery replaces it."""
    newest = None
    for source_file, load_batch in current_loads(con, feed.id):
        try:
            current_key = snapshot_order_key(feed, source_file)
        except DeliveryError:
            continue
        if current_key > key and (newest is None or current_key > newest[0]):
            newest = (current_key, (source_file, load_batch))
    return newest[1] if newest else None


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


def _ingest_fetched(
    feed, warehouse, partition_key, batch_id, started, fetch, skip_empty: bool = False
) -> IngestionResult:
    """One cursor fetch into the raw layer. ``skip_empty``: a fetch that returns nothing is not logged
    (the nightly re-asking of earlier days for late updates, which mostly finds none)."""
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
    if skip_empty and batch.rows_received == 0:
        return result
    release_unused_arrow_memory()
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
            lambda cursor: (
                read_ahead.take_fetch(feed, url, cursor) or sql_feed.fetch_incremental(engine, feed, cursor)
            ),
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


def late_update_days(feed: Feed, run_days: list[str]) -> list[str]:
    """The received days before the run whose changes the run also fetches (``late_update_days`` of the
    delivery), oldest first; the run's own days are fetched anyway."""
    delivery = feed.delivery
    assert isinstance(delivery, HttpDelivery)
    first = min(date.fromisoformat(d) for d in run_days)
    days = [(first - timedelta(days=n)).isoformat() for n in range(delivery.late_update_days, 0, -1)]
    return [d for d in days if d not in run_days]


def ingest_http_late_updates(
    feed: Feed,
    base_url: str,
    warehouse: Path,
    run_days: list[str],
    batch_id: str,
    session: requests.Session | None = None,
    timeout_seconds: float | None = None,
) -> list[IngestionResult]:
    """Fetch what changed since the last fetch in the days received before the run (a ticket closed days
    later): each day with its own stored cursor, so only changed records come back. Days never fetched are
    left to a backfill of their own; fetches that find nothing are not logged."""
    with open_warehouse(warehouse) as con:
        days = [d for d in late_update_days(feed, run_days) if load_cursor(con, feed.id, d) is not None]
    session = session or http_feed.make_session()
    results = []
    for day in days:
        results.append(
            _ingest_fetched(
                feed,
                warehouse,
                day,
                batch_id,
                utcnow(),
                lambda cursor, day=day: http_feed.fetch_day(
                    session, base_url, feed, day, cursor, timeout_seconds
                ),
                skip_empty=True,
            )
        )
    return results
