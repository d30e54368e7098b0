"""Write-audit-publish: copy the audited pool out of the warehouse into an immutable, versioned file.

Analysts never read the warehouse (dbt writes it, and DuckDB allows one writer per file). They read
``<pool dir>/citybrain_pool.duckdb``, which is always one complete published version:

1. the pool schema is copied from the warehouse into a new file ``versions/<version>.duckdb`` (written
   under a temporary name, checkpointed, fsynced, then renamed);
2. ``citybrain_pool.duckdb`` is switched to the new version by ``os.replace`` of a hard link: one atomic rename.
   A connection opened before keeps reading the old file (its inode lives while it is open); one
   opened after reads the new file; none can see a mix, and nobody ever holds a write lock on it;
3. the last ``keep`` versions stay on disk, each with a ``meta`` schema saying which run made it,
   when, from which deliveries and with which check results; ``publications.jsonl`` lists them.

A run whose blocking checks fail never reaches this step, so the previous version stays live.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from citybrain import settings

# Not "pool.duckdb": DuckDB names the catalog after the file, and a catalog "pool" next to the schema
# "pool" makes every `pool.<table>` reference ambiguous.
POOL_FILE = "citybrain_pool.duckdb"
VERSIONS_DIR = "versions"
LOG_FILE = "publications.jsonl"
DEFAULT_KEEP = 7
VERSION_PATTERN = re.compile(r"^\d{8}T\d{6}\d*Z_[0-9a-z]+$")


def pool_dir() -> Path:
    """``CITYBRAIN_POOL_DIR``, default ``$CITYBRAIN_HOME/pool``."""
    return Path(os.environ.get("CITYBRAIN_POOL_DIR") or settings.home() / "pool").resolve()


def published_pool_path(directory: Path | None = None) -> Path:
    return (directory or pool_dir()) / POOL_FILE


@dataclass
class Publication:
    version: str
    run_id: str
    published_at: str
    path: str
    tables: dict[str, int]
    partitions: list[str]
    deliveries: int
    checks_evaluated: int
    checks_failed_warning: int
    kept_versions: list[str]


def publish(
    warehouse: Path,
    run_id: str,
    partitions: list[str],
    directory: Path | None = None,
    keep: int = DEFAULT_KEEP,
    schemas: tuple[str, ...] = ("pool",),
) -> Publication:
    """Copy ``schemas`` of the warehouse into a new version and make it the live pool, atomically.

    The caller holds the warehouse lock (the warehouse is attached read-only)."""
    if keep < 1:
        raise ValueError("keep must be at least 1: the live version is always kept")
    directory = directory or pool_dir()
    versions = directory / VERSIONS_DIR
    versions.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    version = f"{now:%Y%m%dT%H%M%S%f}Z_{re.sub(r'[^0-9a-z]', '', run_id.lower())[:8] or 'manual'}"
    final = versions / f"{version}.duckdb"
    temporary = versions / f".{version}.duckdb.partial"
    temporary.unlink(missing_ok=True)
    try:
        tables, deliveries, evaluated, warnings = _write_version(
            temporary, warehouse, schemas, version, run_id, now, partitions
        )
        _fsync(temporary)
        os.chmod(temporary, 0o444)  # a published version is never changed
        os.replace(temporary, final)
    finally:
        temporary.unlink(missing_ok=True)
    _switch_live(directory, final)
    kept = _prune(versions, keep, live=final)
    publication = Publication(
        version=version,
        run_id=run_id,
        published_at=now.isoformat(),
        path=str(final),
        tables=tables,
        partitions=partitions,
        deliveries=deliveries,
        checks_evaluated=evaluated,
        checks_failed_warning=warnings,
        kept_versions=kept,
    )
    with open(directory / LOG_FILE, "a", encoding="utf-8") as log:
        log.write(json.dumps(asdict(publication), ensure_ascii=False) + "\n")
    return publication


def _write_version(path, warehouse, schemas, version, run_id, now, partitions):
    con = duckdb.connect(str(path))
    try:
        con.execute(f"ATTACH '{_sql_path(warehouse)}' AS warehouse (READ_ONLY)")
        con.execute("BEGIN TRANSACTION")
        tables = {}
        for schema in schemas:
            con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            names = [
                name
                for (name,) in con.execute(
                    "SELECT table_name FROM duckdb_tables() WHERE database_name = 'warehouse' "
                    "AND schema_name = ? ORDER BY table_name",
                    [schema],
                ).fetchall()
            ]
            for name in names:
                con.execute(
                    f'CREATE TABLE "{schema}"."{name}" AS SELECT * FROM warehouse."{schema}"."{name}"'
                )
                (tables[f"{schema}.{name}"],) = con.execute(
                    f'SELECT count(*) FROM "{schema}"."{name}"'
                ).fetchone()
        con.execute("CREATE SCHEMA meta")
        # The deliveries behind this version: every delivery currently loaded into the raw layer.
        con.execute(
            "CREATE TABLE meta.deliveries AS SELECT feed_id, provider, partition_key, source_file, file_sha256, "
            "batch_id, rows_received, rows_loaded, rows_quarantined, finished_at AS loaded_at "
            "FROM warehouse.raw.ingestion_log WHERE status = 'loaded'"
        )
        (deliveries,) = con.execute("SELECT count(*) FROM meta.deliveries").fetchone()
        evaluated = warnings = 0
        if _has_table(con, "quality", "expectation_results"):
            con.execute(
                "CREATE TABLE meta.check_results AS SELECT * EXCLUDE (examples) "
                "FROM warehouse.quality.expectation_results WHERE run_id = ?",
                [run_id],
            )
            evaluated, warnings = con.execute(
                "SELECT count(*), count(*) FILTER (WHERE NOT success) FROM meta.check_results"
            ).fetchone()
        con.execute(
            "CREATE TABLE meta.publication AS SELECT ? AS version, ? AS run_id, ?::TIMESTAMPTZ AS published_at, "
            "?::VARCHAR[] AS partitions, ?::JSON AS table_rows",
            [version, run_id, now, partitions, json.dumps(tables)],
        )
        con.execute("COMMIT")
        con.execute("DETACH warehouse")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return tables, deliveries, evaluated, warnings


def _has_table(con, schema: str, table: str) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = 'warehouse' AND schema_name = ? "
            "AND table_name = ?",
            [schema, table],
        ).fetchone()[0]
    )


def _switch_live(directory: Path, version_file: Path) -> None:
    """Point ``citybrain_pool.duckdb`` at ``version_file`` with one atomic rename (a hard link, so the live file
    is a real file every client can open, and old readers keep their inode)."""
    link = directory / f".{POOL_FILE}.{os.getpid()}.link"
    link.unlink(missing_ok=True)
    os.link(version_file, link)
    os.replace(link, directory / POOL_FILE)
    _fsync_dir(directory)


def _prune(versions: Path, keep: int, live: Path) -> list[str]:
    files = sorted(p for p in versions.glob("*.duckdb") if VERSION_PATTERN.match(p.stem))
    kept = files[-keep:]
    if live not in kept:
        kept.append(live)
    for old in files:
        if old not in kept:
            old.unlink()  # a reader that still has it open keeps reading it
    return [p.stem for p in kept]


def list_publications(directory: Path | None = None) -> list[dict]:
    path = (directory or pool_dir()) / LOG_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def live_version(directory: Path | None = None) -> str | None:
    """The version ``citybrain_pool.duckdb`` currently is (read from the file itself)."""
    path = published_pool_path(directory)
    if not path.exists():
        return None
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute("SELECT version FROM meta.publication").fetchone()[0]


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
