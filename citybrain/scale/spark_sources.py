"""The lake's Parquet directories as Spark views, read in place (no copy into Spark's warehouse).

``raw.<feed>`` reads ``<lake>/raw/feed=<feed>`` with the file's own columns (the hive partition column
Spark would infer from ``partition=...`` is left out: ``_partition`` inside the files is the lineage
column); ``reference.*``, ``raw.ingestion_log``, ``raw.quarantine`` and ``quality.expectation_results``
read ``<lake>/tables/<schema>/<table>``. Views re-list their files when queried, so a new partition is
seen by the next query. ``execute`` is any callable that runs one Spark SQL statement: a session's
``spark.sql`` or a Thrift cursor's ``execute``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq

from citybrain.lake.parquet_lake import source_locations


def _columns(directory: Path) -> list[str]:
    first = next(iter(sorted(directory.rglob("data-*.parquet"))), None)
    if first is None:
        raise FileNotFoundError(f"no Parquet file under {directory}")
    return list(pq.read_schema(first).names)


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def view_statements(lake: Path) -> list[str]:
    statements = []
    schemas = set()
    for (schema, table), directory in source_locations(lake).items():
        if schema not in schemas:
            statements.append(f"CREATE DATABASE IF NOT EXISTS {_quote(schema)}")
            schemas.add(schema)
        columns = ", ".join(_quote(c) for c in _columns(directory))
        path = str(directory).replace("`", "``")
        statements.append(
            f"CREATE OR REPLACE VIEW {_quote(schema)}.{_quote(table)} AS SELECT {columns} FROM parquet.`{path}`"
        )
    return statements


def register(execute: Callable[[str], object], lake: Path) -> int:
    statements = view_statements(lake)
    for statement in statements:
        execute(statement)
    return len(statements)
