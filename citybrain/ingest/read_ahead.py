"""A run's largest new file deliveries read in a second process while the run's first steps work.

Why: ``citybrain run`` executes a night's steps one after another in one process (Dagster's multiprocess
executor was slower on two cores: bench/RESULTS.md, stop 41), so while the small feeds load, one core is
mostly idle, and then the largest delivery is read while the other feeds wait: a 10M-resident registry
takes about 30 s to decode, split and check (``read_delivery``), a third of the ingestion stage. Started
with the run (``start_for_this_process``), a worker process reads the run's large new deliveries
(``MIN_BYTES`` and more, largest first) into batches on disk, and the feed's step takes the batch
(``take``) instead of reading the file again.

Why the batch is the one the step would have read: ``read_delivery`` depends on nothing but the feed's
definition, the file's bytes and its name. A batch is taken only for the same definition, name and
SHA-256 as the step found; otherwise (the file changed since, the worker failed or is gone, or it has not
started that file when the step needs it) the step reads the file itself, exactly as without read-ahead.
A file is claimed by creating its claim file exclusively, by the worker before reading it or by the step
when the worker has not started it, so no file is read twice at once and no step waits for a read that
has not begun. A read that fails in the worker is read again by the step, which then fails (or
quarantines) with its own error, in its own log.

The worker writes nothing to the warehouse (DuckDB has one writer process): the step still checks the
load log under the writer lock and writes the delivery in one transaction. Only new names are read ahead
(a name logged as loaded, superseded or a duplicate is not), so a run repeated for the same night reads
nothing twice.
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

from citybrain import settings
from citybrain.catalog import Catalog, Feed, FileDelivery
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
    """The run's new deliveries of ``MIN_BYTES`` or more, largest first, as worker jobs."""
    found = []
    for feed in catalog.feeds:
        if feed.id not in feed_ids or not isinstance(feed.delivery, FileDelivery):
            continue
        for key in partition_keys if feed.is_partitioned else [None]:
            try:
                paths = delivered_paths(feed, landing, key, [])
            except DeliveryError:
                continue  # the step says why
            found += [
                (feed, path, relative, size) for path, relative in paths if (size := _size(path)) >= MIN_BYTES
            ]
    if not found:
        return []
    logged = _logged_names(warehouse, {feed.id for feed, *_ in found})
    found = [f for f in found if (f[0].id, f[2]) not in logged]
    found.sort(key=lambda f: -f[3])
    return [
        {"id": str(n), "feed": feed.model_dump(mode="json"), "path": str(path), "relative": relative}
        for n, (feed, path, relative, _) in enumerate(found)
    ]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _logged_names(warehouse: Path, feed_ids: set[str]) -> set[tuple[str, str]]:
    """(feed, name) of every delivery loaded, superseded or found a duplicate before."""
    if not warehouse.exists():
        return set()
    from citybrain.ingest.warehouse import open_warehouse

    with open_warehouse(warehouse) as con:
        rows = con.execute(
            "SELECT DISTINCT feed_id, source_file FROM raw.ingestion_log "
            "WHERE status IN ('loaded', 'superseded', 'duplicate') AND list_contains(?, feed_id)",
            [sorted(feed_ids)],
        ).fetchall()
    return {(feed_id, name) for feed_id, name in rows}


def start_for_this_process(
    catalog: Catalog, feed_ids: set[str], partition_keys: list[str], landing: Path, warehouse: Path
) -> ReadAhead | None:
    """Start reading ahead the run's large new deliveries; the directory is exported in
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
        "reading %d deliveries ahead in process %d: %s", len(jobs), process.pid, [j["relative"] for j in jobs]
    )
    return ReadAhead(process, directory)


def _remove_abandoned(base: Path) -> None:
    """Directories left by a process killed before it could stop its read-ahead."""
    for directory in base.glob("citybrain-read-ahead-*"):
        pid = _read(directory / OWNER_FILE)
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(directory, ignore_errors=True)


def stop_for_this_process(read_ahead: ReadAhead | None) -> None:
    """Stop what ``start_for_this_process`` started; batches not taken are removed."""
    if read_ahead is not None:
        os.environ.pop(READ_AHEAD_DIR_ENV, None)
        read_ahead.stop()


# --- the step's side --------------------------------------------------------------------------------------


def take(feed: Feed, delivered: DeliveredFile) -> Batch | None:
    """The batch the worker read of this delivery, or None: the caller reads the file itself."""
    directory = os.environ.get(READ_AHEAD_DIR_ENV)
    if not directory:
        return None
    try:
        return _take(Path(directory), feed, delivered)
    except Exception as exc:  # noqa: BLE001 - a broken hand-over costs a read, never the delivery
        log.warning("%s: the read-ahead batch could not be taken (%s); read here", delivered.relative, exc)
        return None


def _take(directory: Path, feed: Feed, delivered: DeliveredFile) -> Batch | None:
    try:
        jobs = json.loads((directory / JOBS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    job = next((j for j in jobs if j["feed"]["id"] == feed.id and j["relative"] == delivered.relative), None)
    if job is None or job["feed"] != feed.model_dump(mode="json"):
        return None
    if _claim(directory, job["id"]):
        log.info("%s: not read ahead yet, read here", delivered.relative)
        return None
    done = _wait(directory, job["id"])
    if done is None:
        return None
    sha256, batch = done
    if sha256 != delivered.sha256:
        log.info("%s: changed since it was read ahead, read again here", delivered.relative)
        return None
    log.info("%s: read ahead in process %s", delivered.relative, _read(directory / PID_FILE))
    return batch


def _claim(directory: Path, job_id: str) -> bool:
    """True for the first caller only (the worker or a step)."""
    try:
        os.close(os.open(directory / f"{job_id}.claim", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def _wait(directory: Path, job_id: str) -> tuple[str, Batch] | None:
    """(SHA-256, batch) once the worker has read the job; None if its read failed or the worker is gone."""
    done, failed = directory / f"{job_id}.done", directory / f"{job_id}.failed"
    pid = int(_read(directory / PID_FILE) or 0)
    while not done.exists():
        if failed.exists():
            log.info("reading ahead failed (%s); read here", _read(failed))
            return None
        if not _alive(pid):
            if done.exists():
                break
            return None
        time.sleep(POLL_SECONDS)
    with done.open("rb") as f:
        result = pickle.load(f)
    rows = result["rows"]
    if isinstance(rows, tuple):  # ("spill", file name, rows)
        rows = SpilledRows.adopt(directory / rows[1], rows[2])
    batch = Batch(result["source"], result["columns"], rows, result["quarantined"], result["warnings"])
    return result["sha256"], batch


def _alive(pid: int) -> bool:
    """Whether the worker runs: not ended, and not a zombie its parent has not reaped yet."""
    if pid <= 0:
        return False
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True
    return status.rpartition(")")[2].split()[0] not in ("Z", "X")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return ""


# --- the worker -------------------------------------------------------------------------------------------


def work(directory: Path) -> None:
    """Read each job not claimed by a step, in order, until done or the process that started this is gone."""
    from citybrain.ingest.batch import release_unused_arrow_memory
    from citybrain.ingest.file_readers import read_delivery
    from citybrain.ingest.landing import sha256_of

    os.nice(NICENESS)
    parent = os.getppid()
    for job in json.loads((directory / JOBS_FILE).read_text(encoding="utf-8")):
        if os.getppid() != parent:
            return
        if not _claim(directory, job["id"]):
            continue
        path = Path(job["path"])
        try:
            feed = Feed.model_validate(job["feed"])
            sha256 = sha256_of(path)
            batch = read_delivery(feed, path, job["relative"])
            _write_done(directory, job["id"], sha256, batch)
        except Exception as exc:  # noqa: BLE001 - the step reads the file again and reports it
            (directory / f"{job['id']}.failed").write_text(f"{type(exc).__name__}: {exc}", encoding="utf-8")
        release_unused_arrow_memory()


def _write_done(directory: Path, job_id: str, sha256: str, batch: Batch) -> None:
    rows = batch.rows
    if isinstance(rows, SpilledRows):
        name = f"{job_id}.parquet"
        os.replace(rows.hand_over(), directory / name)
        rows = ("spill", name, rows.num_rows)
    result = {
        "sha256": sha256,
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
    work(Path(sys.argv[1]))
