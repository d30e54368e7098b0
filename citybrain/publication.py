"""Write-audit-publish, per tier: copy the audited pool out of the warehouse into immutable, versioned files.

Analysts never read the warehouse (dbt writes it, DuckDB allows one writer per file, and it holds restricted
data). Each pool table belongs to one tier, its dbt model's ``config.meta.classification`` (DESIGN §5):

* ``open`` → ``<pool dir>/open/citybrain_open.duckdb``;
* ``conditional`` → ``<pool dir>/conditional/citybrain_conditional.duckdb``;
* ``restricted`` → never copied: it stays in the warehouse.

A pool table without a classification stops the publication (nobody decided who may read it). Every tier
file is one complete published version, and one publication gives all tiers the same version id:

1. each tier's tables are copied into ``<tier>/versions/<version>.duckdb`` (written under a temporary name,
   checkpointed, fsynced, made read-only, then renamed);
2. each tier's live file is switched to its new version by ``os.replace`` of a hard link: one atomic rename
   per tier. A connection opened before keeps reading the old file (its inode lives while it is open); one
   opened after reads the new file; none can see a mix, and nobody ever holds a write lock on it. The two
   tiers switch one after the other, microseconds apart; ``citybrain.access`` checks that the tiers it
   attaches carry the same version and re-opens them if a switch fell in between;
3. the last ``keep`` versions of each tier stay on disk, each with a ``meta`` schema saying which run made
   it, when, from which deliveries and with which check results; ``publications.jsonl`` lists them and the
   audit log gets one ``publication`` record.

A run whose blocking checks fail never reaches this step, so the previous version stays live.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from citybrain import settings

TIERS = ("open", "conditional", "restricted")
PUBLISHED_TIERS = ("open", "conditional")  # restricted data never leaves the warehouse
PUBLISHED_SCHEMA = "pool"
VERSIONS_DIR = "versions"
LOG_FILE = "publications.jsonl"
DEFAULT_KEEP = 7
VERSION_PATTERN = re.compile(r"^\d{8}T\d{6}\d*Z_[0-9a-z]+$")
# The single-file layout before tiers: removed at the first tiered publication, because it mixed tiers.
LEGACY_POOL_FILE = "citybrain_pool.duckdb"


class PublicationError(RuntimeError):
    """The pool cannot be published as it is (e.g. a table nobody classified)."""


def pool_dir() -> Path:
    """``CITYBRAIN_POOL_DIR``, default ``$CITYBRAIN_HOME/pool``."""
    return Path(os.environ.get("CITYBRAIN_POOL_DIR") or settings.home() / "pool").resolve()


def tier_file_name(tier: str) -> str:
    """``citybrain_<tier>.duckdb``: DuckDB names the catalog after the file, so the catalog is
    ``citybrain_open`` and never collides with the schema ``pool`` (a catalog "pool" would make every
    ``pool.<table>`` reference ambiguous)."""
    _check_published_tier(tier)
    return f"citybrain_{tier}.duckdb"


def tier_path(tier: str, directory: Path | None = None) -> Path:
    """The live file of a published tier."""
    return (directory or pool_dir()) / tier / tier_file_name(tier)


def tier_paths(directory: Path | None = None) -> dict[str, Path]:
    return {tier: tier_path(tier, directory) for tier in PUBLISHED_TIERS}


def _check_published_tier(tier: str) -> None:
    if tier not in PUBLISHED_TIERS:
        raise ValueError(
            f"unknown published tier {tier!r}: published tiers are {', '.join(PUBLISHED_TIERS)} "
            f"(restricted data is never published)"
        )


def classification_from_manifest(manifest_path: Path, schema: str = PUBLISHED_SCHEMA) -> dict[str, str]:
    """Table name → classification of every dbt node built into ``schema``, from the dbt manifest.

    Read when publishing, never hard-coded: models and classifications change with the dbt project.
    A node without ``config.meta.classification`` maps to ``None`` (publication then refuses)."""
    manifest = json.loads(Path(manifest_path).read_text(encoding="utf-8"))
    tiers: dict[str, str | None] = {}
    for node in manifest["nodes"].values():
        if node.get("resource_type") not in ("model", "seed", "snapshot") or node.get("schema") != schema:
            continue
        meta = (node.get("config") or {}).get("meta") or node.get("meta") or {}
        tiers[node.get("alias") or node["name"]] = meta.get("classification")
    return tiers


@dataclass
class Publication:
    version: str
    run_id: str
    published_at: str
    paths: dict[str, str]  # tier → version file
    tables: dict[str, dict[str, int]]  # tier → {"pool.<table>": rows}
    withheld: list[str]  # restricted tables, kept in the warehouse
    partitions: list[str]
    deliveries: int
    checks_evaluated: int
    checks_failed_warning: int
    kept_versions: list[str]

    @property
    def row_count(self) -> int:
        return sum(rows for tables in self.tables.values() for rows in tables.values())


def publish(
    warehouse: Path,
    run_id: str,
    partitions: list[str],
    classification: Mapping[str, str | None],
    directory: Path | None = None,
    keep: int = DEFAULT_KEEP,
) -> Publication:
    """Copy the warehouse's pool schema, tier by tier, into a new version and make it live, atomically per tier.

    ``classification`` maps each pool table to its tier (see ``classification_from_manifest``). The caller
    holds the warehouse lock (the warehouse is attached read-only). Success and refusal are both audited."""
    from citybrain.access import audit

    try:
        publication = _publish(warehouse, run_id, partitions, classification, directory, keep)
    except Exception as error:
        audit.append(
            "publication", outcome="error", run_id=run_id, detail=str(error), via="pipeline", user=None
        )
        raise
    audit.append(
        "publication",
        outcome="ok",
        run_id=run_id,
        via="pipeline",
        user=None,
        tiers=sorted(publication.tables),
        tables=sorted(t for tables in publication.tables.values() for t in tables),
        rows=publication.row_count,
        detail=f"version {publication.version}; withheld (restricted): {', '.join(publication.withheld) or 'none'}",
    )
    return publication


def _publish(warehouse, run_id, partitions, classification, directory, keep) -> Publication:
    if keep < 1:
        raise ValueError("keep must be at least 1: the live version is always kept")
    directory = directory or pool_dir()
    assignment, withheld = _assign_tiers(warehouse, classification)
    now = datetime.now(UTC)
    version = f"{now:%Y%m%dT%H%M%S%f}Z_{re.sub(r'[^0-9a-z]', '', run_id.lower())[:8] or 'manual'}"
    finals: dict[str, Path] = {}
    tables: dict[str, dict[str, int]] = {}
    try:
        for tier in PUBLISHED_TIERS:
            versions = directory / tier / VERSIONS_DIR
            versions.mkdir(parents=True, exist_ok=True)
            final = versions / f"{version}.duckdb"
            temporary = versions / f".{version}.duckdb.partial"
            temporary.unlink(missing_ok=True)
            try:
                tables[tier], deliveries, evaluated, warnings = _write_version(
                    temporary, warehouse, assignment[tier], tier, version, run_id, now, partitions
                )
                _fsync(temporary)
                os.chmod(temporary, 0o444)  # a published version is never changed
                os.replace(temporary, final)
                finals[tier] = final
            finally:
                temporary.unlink(missing_ok=True)
    except BaseException:
        for final in finals.values():  # never live: nobody can be reading them
            final.unlink(missing_ok=True)
        raise
    kept: list[str] = []
    for tier, final in finals.items():
        _switch_live(directory / tier, final)
        kept = _prune(directory / tier / VERSIONS_DIR, keep, live=final)
    _remove_legacy(directory)
    publication = Publication(
        version=version,
        run_id=run_id,
        published_at=now.isoformat(),
        paths={tier: str(path) for tier, path in finals.items()},
        tables=tables,
        withheld=withheld,
        partitions=partitions,
        deliveries=deliveries,
        checks_evaluated=evaluated,
        checks_failed_warning=warnings,
        kept_versions=kept,
    )
    with open(directory / LOG_FILE, "a", encoding="utf-8") as log:
        log.write(json.dumps(asdict(publication), ensure_ascii=False) + "\n")
    return publication


def _assign_tiers(warehouse: Path, classification: Mapping[str, str | None]):
    """Which pool tables go to which tier; refuses when a table has no (valid) classification."""
    with duckdb.connect() as con:
        con.execute(f"ATTACH '{_sql_path(warehouse)}' AS warehouse (READ_ONLY)")
        names = [
            name
            for (name,) in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = 'warehouse' "
                "AND schema_name = ? ORDER BY table_name",
                [PUBLISHED_SCHEMA],
            ).fetchall()
        ]
    unclassified = [n for n in names if classification.get(n) is None]
    invalid = {
        n: classification[n] for n in names if n not in unclassified and classification[n] not in TIERS
    }
    if unclassified or invalid:
        problems = []
        if unclassified:
            problems.append(
                "no classification for pool."
                + ", pool.".join(unclassified)
                + " (set config.meta.classification "
                "in the model's YAML and re-parse the dbt project; a table that is no longer a model must be "
                "dropped from the warehouse)"
            )
        if invalid:
            problems.append(
                "unknown classification "
                + ", ".join(f"pool.{n}: {c!r}" for n, c in invalid.items())
                + f" (one of {', '.join(TIERS)})"
            )
        raise PublicationError("refusing to publish the pool: " + "; ".join(problems))
    assignment = {tier: [n for n in names if classification[n] == tier] for tier in PUBLISHED_TIERS}
    withheld = [f"pool.{n}" for n in names if classification[n] == "restricted"]
    return assignment, withheld


def _write_version(path, warehouse, names, tier, version, run_id, now, partitions):
    con = duckdb.connect(str(path))
    try:
        con.execute(f"ATTACH '{_sql_path(warehouse)}' AS warehouse (READ_ONLY)")
        con.execute("BEGIN TRANSACTION")
        tables = {}
        con.execute(f'CREATE SCHEMA "{PUBLISHED_SCHEMA}"')
        for name in names:
            con.execute(
                f'CREATE TABLE "{PUBLISHED_SCHEMA}"."{name}" AS '
                f'SELECT * FROM warehouse."{PUBLISHED_SCHEMA}"."{name}"'
            )
            (tables[f"{PUBLISHED_SCHEMA}.{name}"],) = con.execute(
                f'SELECT count(*) FROM "{PUBLISHED_SCHEMA}"."{name}"'
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
            "?::VARCHAR[] AS partitions, ? AS tier, ?::JSON AS table_rows",
            [version, run_id, now, partitions, tier, json.dumps(tables)],
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


def _switch_live(tier_directory: Path, version_file: Path) -> None:
    """Point the tier's live file at ``version_file`` with one atomic rename (a hard link, so the live file
    is a real file every client can open, and old readers keep their inode)."""
    live = tier_directory / f"citybrain_{tier_directory.name}.duckdb"
    link = tier_directory / f".{live.name}.{os.getpid()}.link"
    link.unlink(missing_ok=True)
    os.link(version_file, link)
    os.replace(link, live)
    _fsync_dir(tier_directory)


def _prune(versions: Path, keep: int, live: Path) -> list[str]:
    files = sorted(p for p in versions.glob("*.duckdb") if VERSION_PATTERN.match(p.stem))
    kept = files[-keep:]
    if live not in kept:
        kept.append(live)
    for old in files:
        if old not in kept:
            old.unlink()  # a reader that still has it open keeps reading it
    return [p.stem for p in kept]


def _remove_legacy(directory: Path) -> None:
    """The pre-tier layout (one ``citybrain_pool.duckdb`` with every table, and its ``versions/``) mixed
    conditional data into a file anyone could open: it goes once the tiers are live."""
    (directory / LEGACY_POOL_FILE).unlink(missing_ok=True)
    legacy_versions = directory / VERSIONS_DIR
    if legacy_versions.is_dir():
        shutil.rmtree(legacy_versions)


def list_publications(directory: Path | None = None) -> list[dict]:
    path = (directory or pool_dir()) / LOG_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def live_version(directory: Path | None = None, tier: str = "open") -> str | None:
    """The version a tier's live file currently is (read from the file itself)."""
    path = tier_path(tier, directory)
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
