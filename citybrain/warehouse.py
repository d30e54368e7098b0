"""The DuckDB warehouse: where it is, its limits, its writer lock, and the one way to connect to it.

DuckDB lets one process write a file and refuses other processes even a read-only connection while it
does, and Dagster runs steps in several processes (ingestion in parallel, checks beside dbt). So every
connection to the warehouse is taken under an exclusive file lock (``<warehouse>.lock``), held only as long
as the connection is open, and every connection carries the same limits (``memory_limit``,
``temp_directory``). ``Warehouse.connect`` is the only place that calls ``duckdb.connect`` on the warehouse;
the Dagster layer builds a ``Warehouse`` from its ``WarehouseResource`` (``assets/resources.py``), library
code from the environment (``Warehouse.from_settings``).

Publication files (``pool/<tier>/...``) and in-memory sessions are not the warehouse and connect
themselves.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from citybrain import settings

if TYPE_CHECKING:
    import duckdb

LOCK_TIMEOUT_SECONDS = 3600.0  # a writer (a night's dbt build) may hold the warehouse this long


@contextmanager
def warehouse_lock(path: Path, timeout_seconds: float = LOCK_TIMEOUT_SECONDS) -> Iterator[None]:
    """The exclusive lock of the warehouse ``path`` (a ``.lock`` file beside it), waited for up to
    ``timeout_seconds``. Not re-entrant: take it once around everything that connects."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a+") as lock_file:
        deadline = time.monotonic() + timeout_seconds
        while True:
            try:
                fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"{path} stayed locked by another writer for {timeout_seconds:.0f} s"
                    ) from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


@dataclass(frozen=True)
class Warehouse:
    """A warehouse file and the settings every connection to it takes.

    ``memory_limit`` (e.g. ``"512MB"``) and ``temp_directory`` (where operators spill) default to DuckDB's
    own (80 % of RAM, ``<database>.tmp``)."""

    path: Path
    memory_limit: str | None = None
    temp_directory: Path | None = None
    lock_timeout_seconds: float = LOCK_TIMEOUT_SECONDS

    @classmethod
    def from_settings(cls, path: Path | None = None) -> Warehouse:
        """The warehouse of the environment: ``CITYBRAIN_WAREHOUSE`` (else ``$CITYBRAIN_HOME/warehouse.duckdb``)
        with ``CITYBRAIN_DUCKDB_MEMORY_LIMIT`` and ``CITYBRAIN_DUCKDB_TEMP_DIR``; ``path`` overrides the file."""
        config = settings.duckdb_config()
        temp = config.get("temp_directory")
        return cls(
            path=Path(path).resolve() if path else settings.warehouse_path(),
            memory_limit=config.get("memory_limit"),
            temp_directory=Path(temp) if temp else None,
        )

    def duckdb_config(self) -> dict[str, str]:
        config = {}
        if self.memory_limit:
            config["memory_limit"] = self.memory_limit
        if self.temp_directory:
            self.temp_directory.mkdir(parents=True, exist_ok=True)
            config["temp_directory"] = str(self.temp_directory)
        return config

    @contextmanager
    def lock(self) -> Iterator[None]:
        """The writer lock alone, for work that spans several connections (or hands the file to dbt)."""
        with warehouse_lock(self.path, self.lock_timeout_seconds):
            yield

    @contextmanager
    def connect(self, read_only: bool = False, locked: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection under the writer lock (``locked=False``: the caller already holds it), closed on exit.

        Read-only connections take the lock too: DuckDB refuses them while another process writes."""
        import duckdb  # here: the definitions import this module but need no DuckDB

        with warehouse_lock(self.path, self.lock_timeout_seconds) if locked else _nothing():
            con = duckdb.connect(str(self.path), read_only=read_only, config=self.duckdb_config())
            try:
                yield con
            finally:
                con.close()


@contextmanager
def _nothing() -> Iterator[None]:
    yield
