"""Dagster's SQLite event log, keeping its engines and connections instead of building them per event.

The stock ``SqliteEventLogStorage`` builds a new engine, opens a new SQLite connection and closes it
for every use: storing one asset-check evaluation opens three (the run's file twice, the index once),
asks the index whether the check table exists through a fourth, and every close of a file's last
connection checkpoints its write-ahead log. Each new engine also starts with an empty compiled-statement
cache. A night's run stores well over a thousand events (every dbt test is a planned and an evaluated
check), and most of the time Dagster spent storing them went there.

This storage keeps one engine per recently used file with one pooled connection, and remembers the
tables it has seen exist. Every use is still its own committed transaction, so other processes (the
UI, the daemon) read the same file states as before; the write-ahead log is checkpointed by SQLite's
own threshold instead of at every event. Everything else (schema, migrations, the watcher, wipe) is
Dagster's. ``orchestration/instance/dagster.yaml`` names it; a PostgreSQL instance does not use it.

Dagster also hands a storage whole batches of events (``store_event_batch``) when
``DAGSTER_EVENT_BATCH_SIZE`` is above 0: the events it plans when a run is created (one per asset and
check of the run: ~415 for a night) and a step's materializations of a partition range. Its default
stores them one by one, two or three committed SQLite transactions each (the run's file, the index),
which was seconds of every night's start. This storage writes a batch in one transaction per file, and
turns batching on in the processes that use it unless the variable is set (``BATCH_SIZE_ENV``; 0 turns
it off). An event of the batch that fails rolls the whole batch back; Dagster then stores its events one
by one.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from dagster import Field, StringSource
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.pool import QueuePool

KEPT_ENGINES = 32
"""Files whose engine is kept: a run writes two (its own and the index); the UI reads many runs."""
BATCH_SIZE_ENV = "DAGSTER_EVENT_BATCH_SIZE"  # read by Dagster's instance at every event
BATCH_SIZE = 1000
"""Events per batch at most: a night plans ~415; a backfill's range of partitions is split beyond it."""


class ReusingSqliteEventLogStorage(SqliteEventLogStorage):
    """``SqliteEventLogStorage`` that reuses an engine per database file (see the module's docstring)."""

    def __init__(self, base_dir: str, inst_data=None):
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._engines_pid = os.getpid()
        self._tables_seen: set[str] = set()
        self._batch = threading.local()  # .connections: file -> connection, inside store_event_batch
        os.environ.setdefault(BATCH_SIZE_ENV, str(BATCH_SIZE))
        super().__init__(base_dir, inst_data)

    @classmethod
    def config_type(cls):
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> ReusingSqliteEventLogStorage:
        """``base_dir`` defaults to where Dagster's own SQLite storage keeps event logs under
        ``$DAGSTER_HOME`` (history/runs), so a lake that switches to this class reads its earlier runs."""
        base_dir = config_value.get("base_dir")
        if not base_dir:
            home = os.environ.get("DAGSTER_HOME")
            if not home:
                raise ValueError(
                    "ReusingSqliteEventLogStorage needs base_dir in its config or DAGSTER_HOME set"
                )
            base_dir = os.path.join(home, "history", "runs", "")
        return cls(base_dir=base_dir, inst_data=inst_data)

    def _engine(self, shard: str) -> Engine:
        if self._engines_pid != os.getpid():  # a forked child never uses its parent's connections
            for engine in self._engines.values():
                engine.dispose(close=False)
            self._engines.clear()
            self._engines_pid = os.getpid()
        engine = self._engines.get(shard)
        if engine is None:
            engine = create_engine(
                self.conn_string_for_shard(shard),
                poolclass=QueuePool,
                pool_size=1,  # uses are serialised by the storage's lock; overflow is for safety only
                max_overflow=2,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
            )
            self._engines[shard] = engine
            while len(self._engines) > KEPT_ENGINES:
                self._engines.popitem(last=False)[1].dispose()
        else:
            self._engines.move_to_end(shard)
        return engine

    def _engine_with_schema(self, shard: str) -> Engine:
        engine = self._engine(shard)
        if shard not in self._initialized_dbs:  # as Dagster's: a new (or wiped) file gets its schema
            self._initdb(engine)
            self._initialized_dbs.add(shard)
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        batch = getattr(self._batch, "connections", None)
        if batch is not None:  # inside store_event_batch on this thread, which holds the lock
            if shard not in batch:
                conn = self._engine_with_schema(shard).connect()
                conn.begin()
                batch[shard] = conn
            yield batch[shard]
            return
        with self._db_lock, self._engine_with_schema(shard).connect() as conn, conn.begin():
            yield conn

    def store_event_batch(self, events: Sequence) -> None:
        """Store the events as ``store_event`` does, in one transaction per file (see the module's
        docstring); an event that fails rolls back every event of the batch."""
        with self._db_lock:
            self._batch.connections = {}
            try:
                for event in events:
                    self.store_event(event)
                for conn in self._batch.connections.values():
                    conn.commit()
            finally:
                connections, self._batch.connections = self._batch.connections, None
                for conn in connections.values():
                    conn.close()  # rolls back what was not committed

    def has_table(self, table_name: str) -> bool:
        """Dagster asks before every asset-check event; a table, once there, stays (migrations add)."""
        if table_name in self._tables_seen:
            return True
        exists = super().has_table(table_name)
        if exists:
            self._tables_seen.add(table_name)
        return exists

    def wipe(self) -> None:
        """Dagster deletes the runs' files: no connection of ours may stay open on a deleted file."""
        self._close_engines()
        super().wipe()

    def dispose(self) -> None:
        super().dispose()
        self._close_engines()

    def _close_engines(self) -> None:
        with self._db_lock:
            while self._engines:
                self._engines.popitem()[1].dispose()
