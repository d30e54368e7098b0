"""The warehouse owns its connections (citybrain/warehouse.py, assets/resources.py): one writer lock, the
same DuckDB limits on every connection, read-only when asked, and the resource's fields over the
environment's."""

from __future__ import annotations

import multiprocessing
import time

import duckdb
import pytest

from assets.resources import WarehouseResource
from citybrain.warehouse import Warehouse, warehouse_lock


def _hold_lock(path, ready, release):
    with warehouse_lock(path):
        ready.set()
        release.wait(30)


def test_a_connection_waits_for_the_writer_lock_of_another_process(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    with Warehouse(path).connect() as con:
        con.execute("CREATE TABLE t AS SELECT 1 AS x")
    context = multiprocessing.get_context("spawn")
    ready, release = context.Event(), context.Event()
    holder = context.Process(target=_hold_lock, args=(path, ready, release))
    holder.start()
    try:
        assert ready.wait(60)
        impatient = Warehouse(path, lock_timeout_seconds=0.3)
        started = time.monotonic()
        with pytest.raises(TimeoutError, match="stayed locked"), impatient.connect(read_only=True):
            pass
        assert time.monotonic() - started >= 0.3
    finally:
        release.set()
        holder.join(30)
    with Warehouse(path, lock_timeout_seconds=5).connect(read_only=True) as con:
        assert con.execute("SELECT x FROM t").fetchall() == [(1,)]


def test_read_only_connections_cannot_write(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    with Warehouse(path).connect() as con:
        con.execute("CREATE TABLE t (x INTEGER)")
    with Warehouse(path).connect(read_only=True) as con, pytest.raises(duckdb.Error, match="read-only"):
        con.execute("INSERT INTO t VALUES (1)")


def test_limits_come_from_the_environment_unless_the_resource_sets_them(tmp_path, monkeypatch):
    monkeypatch.setenv("CITYBRAIN_WAREHOUSE", str(tmp_path / "env.duckdb"))
    monkeypatch.setenv("CITYBRAIN_DUCKDB_MEMORY_LIMIT", "300MB")
    monkeypatch.setenv("CITYBRAIN_DUCKDB_TEMP_DIR", str(tmp_path / "spill"))
    from_env = Warehouse.from_settings()
    assert from_env.path == (tmp_path / "env.duckdb").resolve()
    with from_env.connect() as con:
        limit, temp = con.execute(
            "SELECT current_setting('memory_limit'), current_setting('temp_directory')"
        ).fetchone()
    # DuckDB reports the limit in its own units: 300 MB = 286.1 MiB.
    assert limit == "286.1 MiB" and temp == str((tmp_path / "spill").resolve())

    resource = WarehouseResource(path=str(tmp_path / "own.duckdb"), memory_limit="200MB")
    own = resource.warehouse()
    assert own.path == (tmp_path / "own.duckdb").resolve() and own.memory_limit == "200MB"
    assert own.temp_directory == (tmp_path / "spill").resolve(), (
        "unset fields still come from the environment"
    )
    with resource.connect() as con:
        assert con.execute("SELECT current_setting('memory_limit')").fetchone() == ("190.7 MiB",)
    assert resource.resolved_path() == own.path
