"""The raw layer as Parquet files in the lake: the tables both engines read.

DuckDB stays the ingestion database (transactions, quarantine, cursors, supersession); the Parquet lake
holds the *current* rows of every raw feed, hive-partitioned by feed and partition, lineage columns
inside, plus the small tables the dbt sources also read (reference, ingestion log, quarantine,
expectation results)::

    <lake>/raw/feed=<feed_id>/partition=<YYYY-MM-DD | __HIVE_DEFAULT_PARTITION__>/data-<fingerprint>.parquet
    <lake>/tables/<schema>/<table>/data-<fingerprint>.parquet

A partition's file name carries a fingerprint of the batches it holds, so ``sync`` rewrites only the
partitions whose batches changed (a new delivery, a superseded one) and removes emptied ones: the cost
of a nightly sync is the new day, not the history. Each file is written under a temporary name and
renamed into place, and the old file is removed only after, so a reader never sees half a partition.
Spark reads these directories in place (``citybrain/scale/spark_sources.py``); DuckDB can too
(``duckdb_views``), which is how the parity check builds both pools from the same files.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb

from citybrain.ingest.warehouse import quote_ident

NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"  # Hive's and DuckDB's spelling of a NULL partition value
SMALL_TABLES = (
    ("raw", "ingestion_log"),
    ("raw", "quarantine"),
    ("reference", "city_counties"),
    ("reference", "division_crosswalk"),
    ("reference", "division_townships"),
    ("reference", "county_boundaries"),
    ("reference", "county_cells"),
    ("reference", "feeds"),
    ("reference", "vocabularies"),
    ("reference", "operators"),
    ("quality", "expectation_results"),
)
BOOKKEEPING = {"ingestion_log", "quarantine", "feed_cursor"}


@dataclass
class SyncReport:
    written: list[str]
    removed: list[str]
    unchanged: int


def feed_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'raw' ORDER BY table_name"
    ).fetchall()
    return [r[0] for r in rows if r[0] not in BOOKKEEPING]


def existing_tables(con: duckdb.DuckDBPyConnection) -> set[tuple[str, str]]:
    return set(con.execute("SELECT table_schema, table_name FROM information_schema.tables").fetchall())


def _fingerprint(parts: list[str]) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _write(con: duckdb.DuckDBPyConnection, query: str, directory: Path, fingerprint: str) -> Path:
    """Write ``query`` to ``directory/data-<fingerprint>.parquet`` atomically; drop the older files."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"data-{fingerprint}.parquet"
    temporary = directory / f".tmp-{fingerprint}-{os.getpid()}.parquet"
    con.execute(f"COPY ({query}) TO '{_sql_path(temporary)}' (FORMAT parquet, COMPRESSION zstd)")
    os.replace(temporary, target)
    for old in directory.glob("data-*.parquet"):
        if old != target:
            old.unlink()
    return target


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def sync_feed(con: duckdb.DuckDBPyConnection, lake: Path, feed_id: str) -> SyncReport:
    """Bring ``<lake>/raw/feed=<feed_id>`` in line with ``raw.<feed_id>``: one file per partition."""
    report = SyncReport([], [], 0)
    table = f"raw.{quote_ident(feed_id)}"
    feed_dir = lake / "raw" / f"feed={feed_id}"
    state = con.execute(
        f"SELECT _partition, list(DISTINCT _batch_id || ':' || _file_sha256 ORDER BY _batch_id || ':' || _file_sha256), "
        f"count(*) FROM {table} GROUP BY _partition"
    ).fetchall()
    wanted: dict[str, tuple[str | None, str]] = {}
    for partition, batches, rows in state:
        name = f"partition={partition if partition is not None else NULL_PARTITION}"
        wanted[name] = (partition, _fingerprint([*batches, str(rows)]))
    empty = not wanted  # an empty feed still has its schema in the lake: one zero-row file
    if empty:
        wanted[f"partition={NULL_PARTITION}"] = (None, "empty")
    for name, (partition, fingerprint) in wanted.items():
        directory = feed_dir / name
        if (directory / f"data-{fingerprint}.parquet").exists():
            report.unchanged += 1
            continue
        condition = "_partition IS NULL" if partition is None else f"_partition = '{partition}'"
        _write(con, f"SELECT * FROM {table} WHERE {'false' if empty else condition}", directory, fingerprint)
        report.written.append(f"{feed_id}/{name}")
    if feed_dir.exists():
        for directory in feed_dir.iterdir():
            if directory.is_dir() and directory.name not in wanted:
                shutil.rmtree(directory)
                report.removed.append(f"{feed_id}/{directory.name}")
    return report


def sync_table(con: duckdb.DuckDBPyConnection, lake: Path, schema: str, table: str) -> bool:
    """Rewrite ``<lake>/tables/<schema>/<table>`` when the table's content changed; True when written."""
    relation = f"{quote_ident(schema)}.{quote_ident(table)}"
    content = con.execute(f"SELECT count(*), coalesce(sum(hash(t)), 0) FROM {relation} AS t").fetchone()
    fingerprint = _fingerprint([str(content[0]), str(content[1])])
    directory = lake / "tables" / schema / table
    if (directory / f"data-{fingerprint}.parquet").exists():
        return False
    _write(con, f"SELECT * FROM {relation}", directory, fingerprint)
    return True


def sync(con: duckdb.DuckDBPyConnection, lake: Path, feeds: list[str] | None = None) -> SyncReport:
    """Sync the given feeds (all raw feeds when None) and every small source table that exists."""
    report = SyncReport([], [], 0)
    for feed_id in feeds if feeds is not None else feed_tables(con):
        part = sync_feed(con, lake, feed_id)
        report.written += part.written
        report.removed += part.removed
        report.unchanged += part.unchanged
    present = existing_tables(con)
    for schema, table in SMALL_TABLES:
        if (schema, table) in present:
            if sync_table(con, lake, schema, table):
                report.written.append(f"{schema}.{table}")
            else:
                report.unchanged += 1
    return report


def source_locations(lake: Path) -> dict[tuple[str, str], Path]:
    """(schema, table) -> directory of Parquet files, for every source table the lake holds."""
    locations: dict[tuple[str, str], Path] = {}
    raw = lake / "raw"
    if raw.exists():
        for feed_dir in sorted(raw.glob("feed=*")):
            locations[("raw", feed_dir.name.removeprefix("feed="))] = feed_dir
    tables = lake / "tables"
    if tables.exists():
        for table_dir in sorted(tables.glob("*/*")):
            locations[(table_dir.parent.name, table_dir.name)] = table_dir
    return locations


def duckdb_views(con: duckdb.DuckDBPyConnection, lake: Path) -> list[str]:
    """Create ``<schema>.<table>`` views over the lake's Parquet files in a DuckDB database."""
    created = []
    for (schema, table), directory in source_locations(lake).items():
        partitioned = directory.name.startswith("feed=")  # feeds: one sub-directory per partition
        pattern = _sql_path(directory) + ("/*/*.parquet" if partitioned else "/*.parquet")
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
        con.execute(
            f"CREATE OR REPLACE VIEW {quote_ident(schema)}.{quote_ident(table)} AS "
            f"SELECT * FROM read_parquet('{pattern}', hive_partitioning = false, union_by_name = true)"
        )
        created.append(f"{schema}.{table}")
    return created
