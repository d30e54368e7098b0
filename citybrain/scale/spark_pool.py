"""Spark's built tables, read from their Parquet files by DuckDB.

On the Spark targets dbt writes every table as Parquet under Spark's warehouse directory
(``<warehouse>/<schema>.db/<table>/``, day-partitioned facts as ``<day column>=YYYY-MM-DD/``
sub-directories). Two readers need them in DuckDB: the parity check (read in place) and the nightly job,
whose quality gate and tiered publication work on the DuckDB warehouse — ``import_tables`` copies the
tables a dbt step just built into it, so everything downstream of dbt is the same on both engines.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import duckdb

from citybrain.ingest.warehouse import quote_ident
from citybrain.scale.spark_session import spark_dir

TABLE_MATERIALIZATIONS = {"table", "incremental", "snapshot"}


def spark_warehouse() -> Path:
    """Where Spark keeps built tables: $CITYBRAIN_SPARK_WAREHOUSE (a path this machine can read, e.g. a
    shared filesystem mounted on every node), else the lake's own ``spark/warehouse``."""
    explicit = os.environ.get("CITYBRAIN_SPARK_WAREHOUSE")
    return Path(explicit).resolve() if explicit else spark_dir() / "warehouse"


def table_location(schema: str, table: str, warehouse: Path | None = None) -> Path:
    return (warehouse or spark_warehouse()) / f"{schema}.db" / table


def parquet_scan(schema: str, table: str, warehouse: Path | None = None) -> str:
    """A DuckDB table expression over the table's files (partition directories become columns)."""
    location = table_location(schema, table, warehouse)
    if not location.exists():
        raise FileNotFoundError(f"Spark table {schema}.{table} has no files at {location}")
    pattern = str(location).replace("'", "''") + "/**/*.parquet"
    return f"read_parquet('{pattern}', hive_partitioning = true, union_by_name = true)"


def built_tables(manifest: Mapping[str, Any], unique_ids: Iterable[str] | None = None) -> list[dict]:
    """The table-like nodes of a manifest (optionally only ``unique_ids``), with schema, name and columns."""
    wanted = set(unique_ids) if unique_ids is not None else None
    tables = []
    for uid, node in manifest["nodes"].items():
        if wanted is not None and uid not in wanted:
            continue
        if node["resource_type"] not in {"model", "snapshot"}:
            continue
        if node["config"].get("materialized") not in TABLE_MATERIALIZATIONS:
            continue
        tables.append(
            {
                "schema": node["schema"],
                "name": node["alias"] or node["name"],
                "columns": list(node["columns"]),
            }
        )
    return tables


def _select_list(con: duckdb.DuckDBPyConnection, scan: str, declared: list[str]) -> str:
    """Declared columns first in their YAML order (Spark moves partition columns last), then the rest."""
    present = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()]
    ordered = [c for c in declared if c in present] + [c for c in present if c not in declared]
    return ", ".join(quote_ident(c) for c in ordered)


def import_tables(
    con: duckdb.DuckDBPyConnection, tables: list[dict], warehouse: Path | None = None
) -> dict[str, int]:
    """Replace each table in the DuckDB database by the Spark-built one; returns rows per unique id."""
    rows = {}
    for table in tables:
        scan = parquet_scan(table["schema"], table["name"], warehouse)
        relation = f"{quote_ident(table['schema'])}.{quote_ident(table['name'])}"
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(table['schema'])}")
        select = _select_list(con, scan, table["columns"])
        con.execute(f"CREATE OR REPLACE TABLE {relation} AS SELECT {select} FROM {scan}")
        rows[f"{table['schema']}.{table['name']}"] = con.execute(
            f"SELECT count(*) FROM {relation}"
        ).fetchone()[0]
    return rows
