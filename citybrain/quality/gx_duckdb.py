"""Great Expectations on DuckDB, in-database: the one place that works around GX's gaps for DuckDB.

Why this module exists (GX 1.24, duckdb-engine 0.17):

* GX runs each metric query in ``with engine.connect() as c: result = c.execute(q)`` and fetches the
  rows *after* the block has closed the connection. With DuckDB, closing the connection drops the
  pending result, so every metric fails with ``IndexError: list index out of range``. GX already keeps
  one persisted connection for SQLite, SQL Server, BigQuery and Databricks; we add DuckDB to that list
  (``_PERSISTED_CONNECTION_DIALECTS``). That is the only GX internal touched, and
  ``tests/test_gx_duckdb.py`` fails loudly if it disappears or if GX starts to work without it.
* GX's column-type expectations report DuckDB types through generic SQLAlchemy types (VARCHAR comes
  back as ``String``, DOUBLE as ``FLOAT``, time zones are lost), and regex/LIKE expectations are not
  implemented for the duckdb dialect. Suites therefore check types with DuckDB's ``DESCRIBE`` and
  patterns with DuckDB SQL through ``UnexpectedRowsExpectation`` (see ``suites.py``).

* GX's ``ExecutionEngine.close()`` leaves that persisted connection open (it only disposes the
  engine), which keeps the DuckDB file open; :func:`_close` closes it.
* Validating side by side (:func:`warehouse_lanes`) takes one datasource per thread: a DuckDB
  connection runs one query at a time, and the context's configuration changes with every batch added,
  so every batch is made before the threads start.

The connection is opened read-only, carries the pool's domain functions (``cb_*``), and is closed
by :func:`warehouse_batches` so the warehouse file is free again for the next writer.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from citybrain.warehouse import Warehouse

DUCKDB_DIALECT = "duckdb"


class _DialectName(str):
    """A dialect name GX can test both with ``in`` and with ``.value`` (it does both)."""

    @property
    def value(self) -> str:
        return str(self)


def enable_persisted_duckdb_connection() -> None:
    """Make GX keep one connection open for DuckDB, as it does for SQLite (idempotent)."""
    from great_expectations.execution_engine import sqlalchemy_execution_engine as engine_module

    dialects = engine_module._PERSISTED_CONNECTION_DIALECTS
    if DUCKDB_DIALECT not in dialects:
        engine_module._PERSISTED_CONNECTION_DIALECTS = (*dialects, _DialectName(DUCKDB_DIALECT))


@contextmanager
def warehouse_batches(warehouse: Warehouse | Path, context=None) -> Iterator[WarehouseBatches]:
    """A GX SQL datasource on the warehouse file: read-only, one persisted connection, UDFs registered, the
    warehouse's DuckDB settings. The caller holds the warehouse lock (``Warehouse.lock``)."""
    with warehouse_lanes(warehouse, 1, context) as (batches,):
        yield batches


@contextmanager
def warehouse_lanes(
    warehouse: Warehouse | Path, count: int, context=None
) -> Iterator[list[WarehouseBatches]]:
    """``count`` such datasources in one GX context, each with a connection of its own, so that one thread
    per datasource can validate side by side (DuckDB runs one query at a time per connection). Their batches
    are made before the threads start: making one changes the context's configuration."""
    import great_expectations as gx

    if not isinstance(warehouse, Warehouse):
        warehouse = Warehouse.from_settings(warehouse)

    enable_persisted_duckdb_connection()
    context = context or gx.get_context(mode="ephemeral")
    # GX draws a tqdm bar per validation on stderr: thousands of lines in a night, none useful unattended.
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    opened = []  # (datasource, its execution engine)
    try:
        for lane in range(count):
            name = "warehouse" if count == 1 else f"warehouse_{lane}"
            opened.append(_datasource(context, warehouse, name, python_functions=lane == 0))
        yield [WarehouseBatches(datasource) for datasource, _ in opened]
    finally:
        for datasource, execution_engine in reversed(opened):  # the first lane's connection last
            _close(execution_engine)
            datasource.get_engine().dispose()  # the engine GX used to test the connection when it was added


def _datasource(context, warehouse: Warehouse, name: str, python_functions: bool):
    """A read-only SQL datasource on the warehouse, its connection open, with the domain functions.

    The connections of one process to one DuckDB file share one database, and a Python function
    registered on one of them is the database's: another connection sees it (and cannot register it
    again), and calling it after the connection that registered it has closed crashes the process. So
    the first lane's connection registers the Python functions, the others only their own temporary
    macros (``udfs.register_sql_macros``), the connections are opened here in lane order (not by each
    lane's first query, in its thread) and closed in the reverse order."""
    from sqlalchemy import event

    from citybrain.transform import udfs

    datasource = context.data_sources.add_sql(
        name,
        connection_string=f"duckdb:///{warehouse.path}",
        kwargs={"connect_args": {"read_only": True, "config": warehouse.duckdb_config()}},
    )
    execution_engine = datasource.get_execution_engine()
    register = udfs.register if python_functions else udfs.register_sql_macros
    event.listen(execution_engine.engine, "connect", lambda dbapi_con, _record: register(dbapi_con))
    with execution_engine.get_connection():  # GX's persisted connection, opened now
        pass
    return datasource, execution_engine


def _close(execution_engine) -> None:
    """Really close the persisted connection: GX's ``close()`` disposes the engine but leaves the
    persisted connection open, and DuckDB then refuses any other connection to the file in this
    process (and a writer in another)."""
    connection = getattr(execution_engine, "_connection", None)
    if connection is not None:
        connection.close()
        execution_engine._connection = None
    execution_engine.engine.dispose()


class WarehouseBatches:
    """Batches of warehouse tables for GX: a whole table, or one partition of it."""

    def __init__(self, datasource):
        self._datasource = datasource
        self._count = 0

    def batch(self, query: str):
        """A GX batch over the rows a SQL query returns (a table, or one partition of it)."""
        self._count += 1
        asset = self._datasource.add_query_asset(f"batch_{self._count}", query=query)
        return asset.add_batch_definition_whole_table("rows").get_batch()
