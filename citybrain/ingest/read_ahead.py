"""A run's large new file deliveries and database fetches read in a second process while its first steps work.

Why: ``citybrain run`` executes a night's steps one after another in one process (Dagster's multiprocess
executor was slower on two cores: bench/RESULTS.md, stop 41), so while the small feeds load, one core is
mostly idle, and then the largest delivery is read while the other feeds wait: a 10M-resident registry
takes about 30 s to decode, split and check (``read_delivery``), the insurance database's fetch 10-25 s.
Started with the run (``start_for_this_process``), a worker process reads the run's new file deliveries of
``MIN_BYTES`` and more and the next fetch of each database feed into batches on disk, from the end of the
steps' order (``Feed.ingestion_order``: the full snapshots last), while the run's own process works from
the start (the day's feeds, then the database tables); the feed's step takes the worker's batch (``take``,
``take_fetch``) instead of reading again, and reads itself what the worker has not started.

Why the batch is the one the step would have read: ``read_delivery`` depends on nothing but the feed's
definition, the file's bytes and its name, and ``sql_feed.fetch_incremental`` on the definition, the
database and the cursor. A batch is taken only for the same definition and the same name and SHA-256, or
the same URL and cursor, as the step has; otherwise (the file changed since, another run moved the cursor,
the worker failed or is gone, or it has not started that job when the step needs it) the step reads
itself, exactly as without read-ahead. A database fetched a few seconds before its step is the table as
it was then: rows written since are after the new cursor and come the next night, as they would for a
step that had run then. A job is claimed by creating its claim file exclusively, by the worker before
reading or by the step when the worker has not started it, so nothing is read twice at once and no step
waits for a read that has not begun; a result is handed out once (a retried step reads for itself). A
read that fails in the worker is read again by the step, which then fails (or quarantines) with its own
error, in its own log.

The worker writes nothing to the warehouse (DuckDB has one writer process): the step still checks the
load log under the writer lock and writes the delivery in one transaction. Only new file names are read
ahead (a name logged as loaded, superseded or a duplicate is not), so a run repeated for the same night
reads no file twice.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from citybrain import processes, settings
from citybrain.catalog import Catalog, Feed, FileDelivery, SqlDelivery, connection_url
from citybrain.ingest.batch import Batch, DeliveryError, SpilledRows
from citybrain.ingest.landing import DeliveredFile, delivered_paths

log = logging.getLogger(__name__)

READ_AHEAD_DIR_ENV = "CITYBRAIN_READ_AHEAD_DIR"  # the directory of this process's read-ahead
# A smaller file reads in well under a second: not worth a claim, a pickle and a wait.
MIN_BYTES = 32 << 20
POLL_SECONDS = 0.02
# The worker takes the cycles the run leaves idle: the run's own start (definitions, the instance) and first
# steps come first. On a copy of a 1M-resident lake, one more night: start-up and ingestion 23.1 s at
# niceness 10 against 25.9 s at 0 and 28.7 s without read-ahead (bench/RESULTS.md, stop 42).
NICENESS = 10
JOBS_FILE = "jobs.json"
PID_FILE = "worker.pid"
OWNER_FILE = "owner.pid"  # the process that started the worker and whose steps take its batches
WORKER_MODULE = "citybrain.ingest.read_ahead"


@dataclass
class ReadAhead:
    """A started read-ahead: its worker and directory. ``stop`` ends both."""

    process: subprocess.Popen
    directory: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


def plan(catalog: Catalog, feed_ids: set[str], partition_keys: list[str], landing: Path, warehouse: Path):
    """The worker's jobs: each new delivery of ``MIN_BYTES`` or more of the file feeds, and the next fetch
    of each database feed (from the cursor stored now: the step takes it only if its cursor is the same).
    From the last the run's steps take to the first (``Feed.ingestion_order``, then the feed), so that the
    worker and the steps meet in the middle."""
    files, tables = [], []
    for feed in sorted(catalog.feeds, key=lambda f: f.id):
        if feed.id not in feed_ids:
            continue
        if isinstance(feed.delivery, SqlDelivery):
            connection = catalog.connections[feed.delivery.connection]
            url = connection_url(connection.url_env, connection.default)
            if url:
                tables.append((feed, url))
            continue
        if not isinstance(feed.delivery, FileDelivery):
            continue
        for key in partition_keys if feed.is_partitioned else [None]:
            try:
                paths = delivered_paths(feed, landing, key, [])
            except DeliveryError:
                continue  # the step says why
            files += [(feed, path, relative) for path, relative in paths if _size(path) >= MIN_BYTES]
    if not files and not tables:
        return []
    logged, cursors = _warehouse_state(warehouse, {feed.id for feed, *_ in files}, {f.id for f, _ in tables})
    jobs = [
        {"kind": "file", "feed": feed, "path": str(path), "relative": relative}
        for feed, path, relative in files
        if (feed.id, relative) not in logged
    ] + [{"kind": "sql", "feed": feed, "url": url, "cursor": cursors.get(feed.id)} for feed, url in tables]
    # from the end of the steps' order: the worker reads what the run's own process gets to last
    jobs.sort(key=lambda job: (job["feed"].ingestion_order, job["feed"].id), reverse=True)
    for n, job in enumerate(jobs):
        job.update(id=str(n), feed=job["feed"].model_dump(mode="json"))
    return jobs


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _warehouse_state(warehouse: Path, file_feeds: set[str], sql_feeds: set[str]):
    """(feed, name) of every delivery of ``file_feeds`` loaded, superseded or found a duplicate before, and
    the stored cursor of each of ``sql_feeds`` (as JSON: [value, keys at it])."""
    if not warehouse.exists():
        return set(), {}
    from citybrain.ingest.warehouse import load_cursor, open_warehouse

    with open_warehouse(warehouse) as con:
        rows = con.execute(
            "SELECT DISTINCT feed_id, source_file FROM raw.ingestion_log "
            "WHERE status IN ('loaded', 'superseded', 'duplicate') AND list_contains(?, feed_id)",
            [sorted(file_feeds)],
        ).fetchall()
        cursors = {feed_id: _cursor_json(load_cursor(con, feed_id, None)) for feed_id in sql_feeds}
    return {(feed_id, name) for feed_id, name in rows}, cursors


def _cursor_json(cursor) -> list | None:
    return None if cursor is None else [cursor[0], list(cursor[1])]


def start_for_this_process(
    catalog: Catalog, feed_ids: set[str], partition_keys: list[str], landing: Path, warehouse: Path
) -> ReadAhead | None:
    """Start reading ahead the run's large new file deliveries and database fetches; the directory is exported in
    ``$CITYBRAIN_READ_AHEAD_DIR`` for the steps (``take``). None when there is nothing to read ahead, when
    this process already reads ahead, or when ``$CITYBRAIN_READ_AHEAD`` turns it off."""
    if os.environ.get(READ_AHEAD_DIR_ENV) or not settings.read_ahead_enabled():
        return None
    base = Path(os.environ.get(settings.DUCKDB_TEMP_DIR_ENV) or tempfile.gettempdir())
    _remove_abandoned(base)
    try:
        jobs = plan(catalog, feed_ids, partition_keys, landing, warehouse)
    except Exception as exc:  # noqa: BLE001 - the steps read their files themselves, and say what is wrong
        log.warning("nothing read ahead: %s", exc)
        return None
    if not jobs:
        return None
    base.mkdir(parents=True, exist_ok=True)
    directory = Path(tempfile.mkdtemp(prefix="citybrain-read-ahead-", dir=base))
    (directory / OWNER_FILE).write_text(str(os.getpid()), encoding="utf-8")
    (directory / JOBS_FILE).write_text(json.dumps(jobs), encoding="utf-8")
    # the spill files of the worker's reads are made in this directory, so they are moved, not copied
    env = {**os.environ, settings.DUCKDB_TEMP_DIR_ENV: str(directory)}
    process = subprocess.Popen([sys.executable, "-m", WORKER_MODULE, str(directory)], env=env)
    (directory / PID_FILE).write_text(str(process.pid), encoding="utf-8")
    os.environ[READ_AHEAD_DIR_ENV] = str(directory)
    log.info(
        "reading ahead in process %d: %s", process.pid, [j.get("relative") or j["feed"]["id"] for j in jobs]
    )
    return ReadAhead(process, directory)


def _remove_abandoned(base: Path) -> None:
    """Directories left by a process killed before it could stop its read-ahead."""
    for directory in base.glob("citybrain-read-ahead-*"):
        pid = _read(directory / OWNER_FILE)
        if pid.isdigit() and not processes.alive(int(pid)):
            shutil.rmtree(directory, ignore_errors=True)


def stop_for_this_process(read_ahead: ReadAhead | None) -> None:
    """Stop what ``start_for_this_process`` started; batches not taken are removed."""
    if read_ahead is not None:
        os.environ.pop(READ_AHEAD_DIR_ENV, None)
        read_ahead.stop()


# --- the step's side --------------------------------------------------------------------------------------


def take(feed: Feed, delivered: DeliveredFile) -> Batch | None:
    """The batch the worker read of this delivery, or None: the caller reads the file itself."""
    done = _take(
        feed.id,
        delivered.relative,
        lambda job: job.get("relative") == delivered.relative and job["feed"] == feed.model_dump(mode="json"),
    )
    if done is None:
        return None
    if done["sha256"] != delivered.sha256:
        log.info("%s: changed since it was read ahead, read again here", delivered.relative)
        return None
    return done["batch"]


def take_fetch(feed: Feed, url: str, cursor) -> tuple[Batch, str, tuple[str, list[str]] | None] | None:
    """The worker's fetch of a database feed from ``cursor`` (batch, hash, new cursor, as
    ``sql_feed.fetch_incremental``), or None: the caller fetches itself."""
    wanted = feed.model_dump(mode="json")
    done = _take(
        feed.id,
        f"{feed.id} from cursor {cursor[0] if cursor else None!r}",
        lambda job: job.get("url") == url and job["cursor"] == _cursor_json(cursor) and job["feed"] == wanted,
    )
    if done is None:
        return None
    new_cursor = done["new_cursor"]
    return done["batch"], done["digest"], None if new_cursor is None else (new_cursor[0], list(new_cursor[1]))


def _take(feed_id: str, what: str, matches) -> dict | None:
    """The worker's result for the job of ``feed_id`` that ``matches``, used once; None if there is none."""
    directory = os.environ.get(READ_AHEAD_DIR_ENV)
    if not directory:
        return None
    try:
        directory = Path(directory)
        jobs = json.loads((directory / JOBS_FILE).read_text(encoding="utf-8"))
        job = next((j for j in jobs if j["feed"]["id"] == feed_id and matches(j)), None)
        if job is None:
            return None
        if _claim(directory, job["id"]):
            log.info("%s: not read ahead yet, read here", what)
            return None
        done = _wait(directory, job["id"])
        if done is not None:
            log.info("%s: read ahead in process %s", what, _read(directory / PID_FILE))
        return done
    except Exception as exc:  # noqa: BLE001 - a broken hand-over costs a read, never the delivery
        log.warning("%s: the read-ahead result could not be taken (%s); read here", what, exc)
        return None


def _claim(directory: Path, job_id: str) -> bool:
    """True for the first caller only (the worker or a step)."""
    try:
        os.close(os.open(directory / f"{job_id}.claim", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def _wait(directory: Path, job_id: str) -> dict | None:
    """The worker's result once it has read the job, handed out once (a retried step reads for itself);
    None if the read failed, was handed out already or the worker is gone."""
    done, failed = directory / f"{job_id}.done", directory / f"{job_id}.failed"
    taken = directory / f"{job_id}.taken"
    pid = int(_read(directory / PID_FILE) or 0)
    while True:
        try:
            os.replace(done, taken)
            break
        except FileNotFoundError:
            pass
        if taken.exists():
            return None
        if failed.exists():
            log.info("reading ahead failed (%s); read here", _read(failed))
            return None
        if not processes.alive(pid) and not done.exists():
            return None
        time.sleep(POLL_SECONDS)
    with taken.open("rb") as f:
        result = pickle.load(f)
    rows = result.pop("rows")
    if isinstance(rows, tuple):  # ("spill", file name, rows)
        rows = SpilledRows.adopt(directory / rows[1], rows[2])
    result["batch"] = Batch(
        result.pop("source"), result.pop("columns"), rows, result.pop("quarantined"), result.pop("warnings")
    )
    return result


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return ""


# --- the worker -------------------------------------------------------------------------------------------


def work(directory: Path) -> None:
    """Read each job not claimed by a step, in order, until done or the process that started this is gone."""
    from citybrain.ingest.batch import release_unused_arrow_memory

    parent = os.getppid()
    for job in json.loads((directory / JOBS_FILE).read_text(encoding="utf-8")):
        if os.getppid() != parent:
            return
        if not _claim(directory, job["id"]):
            continue
        try:
            feed = Feed.model_validate(job["feed"])
            result = _read_file(feed, job) if job["kind"] == "file" else _fetch(feed, job)
            _write_done(directory, job["id"], result)
        except Exception as exc:  # noqa: BLE001 - the step reads again and reports it
            (directory / f"{job['id']}.failed").write_text(f"{type(exc).__name__}: {exc}", encoding="utf-8")
        release_unused_arrow_memory()


def _read_file(feed: Feed, job: dict) -> dict:
    from citybrain.ingest.file_readers import read_delivery
    from citybrain.ingest.landing import sha256_of

    path = Path(job["path"])
    sha256 = sha256_of(path)
    return {"sha256": sha256, "batch": read_delivery(feed, path, job["relative"])}


def _fetch(feed: Feed, job: dict) -> dict:
    import sqlalchemy as sa

    from citybrain.ingest import sql_feed

    engine = sa.create_engine(job["url"], pool_pre_ping=True)
    try:
        cursor = job["cursor"]
        batch, digest, new_cursor = sql_feed.fetch_incremental(
            engine, feed, None if cursor is None else (cursor[0], cursor[1])
        )
    finally:
        engine.dispose()
    return {"batch": batch, "digest": digest, "new_cursor": _cursor_json(new_cursor)}


def _write_done(directory: Path, job_id: str, result: dict) -> None:
    batch = result.pop("batch")
    rows = batch.rows
    if isinstance(rows, SpilledRows):
        name = f"{job_id}.parquet"
        os.replace(rows.hand_over(), directory / name)
        rows = ("spill", name, rows.num_rows)
    result |= {
        "source": batch.source,
        "columns": batch.columns,
        "rows": rows,
        "quarantined": batch.quarantined,
        "warnings": batch.warnings,
    }
    partial = directory / f"{job_id}.partial"
    with partial.open("wb") as f:
        pickle.dump(result, f, protocol=5)
    os.replace(partial, directory / f"{job_id}.done")


if __name__ == "__main__":
    os.nice(NICENESS)
    work(Path(sys.argv[1]))
