"""Write-audit-publish, per tier: copy the audited pool out of the warehouse into immutable, versioned files.

Analysts never read the warehouse (dbt writes it, DuckDB allows one writer per file, and it holds restricted
data). Each pool table belongs to one tier, its dbt model's ``config.meta.classification`` (DESIGN §5):

* ``open`` → ``<pool dir>/open/citybrain_open.duckdb``;
* ``conditional`` → ``<pool dir>/conditional/citybrain_conditional.duckdb``;
* ``restricted`` → never copied: it stays in the warehouse.

A pool table without a classification stops the publication (nobody decided who may read it), and so does
the privacy gate (``citybrain/governance/publication_gate.py``, given the dbt manifest): data graded important or
core bound for the open tier, or a conditional table whose smallest equivalence class is below the minimum.
Every tier file is one complete published version, and one publication gives all tiers the same version id:

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

A blocking check that fails does not stop the night: the tables built from the dataset it failed on are held
back (``citybrain/staleness.py``): each keeps the live version's content and is listed, with why and since when,
in ``meta.stale_tables``; every other table is published fresh.

A publication killed at any point (SIGKILL, power loss, a full disk) leaves either the previous version live
everywhere or, once every version file is complete, an intent record ``<pool dir>/.publishing.json`` that
``recover()`` (called by the next publication and at the start of ``citybrain run``) rolls forward: the
remaining tiers are switched, the ``publications.jsonl`` line is written, the audit log notes the recovery.
It also removes what a killed publication left behind: ``.partial`` version files (and their WAL), hard links
never renamed, complete versions that never went live, a torn last line of ``publications.jsonl``.
See docs/RELIABILITY.md.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from citybrain.pool_layout import (
    PUBLISHED_SCHEMA,
    PUBLISHED_TIERS,
    pool_dir,
    tier_file_name,
    tier_path,
)
from citybrain.pool_layout import (
    tier_paths as tier_paths,  # re-exported: callers read the layout through the publication too
)
from citybrain.settings import duckdb_config
from citybrain.vocabulary import TIERS

VERSIONS_DIR = "versions"
LOG_FILE = "publications.jsonl"
DEFAULT_KEEP = 7
VERSION_PATTERN = re.compile(r"^\d{8}T\d{6}\d*Z_[0-9a-z]+$")
INTENT_FILE = ".publishing.json"  # a publication whose versions are complete and whose switch has begun
# The single-file layout before tiers: removed at the first tiered publication, because it mixed tiers.
LEGACY_POOL_FILE = "citybrain_pool.duckdb"


class PublicationError(RuntimeError):
    """The pool cannot be published as it is (e.g. a table nobody classified)."""


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
    # GB/T 43697 grades of the published tables and the re-identification risk of the conditional ones
    # (citybrain/governance/publication_gate.py); empty when published without a manifest.
    grades: dict[str, dict] = field(default_factory=dict)
    reidentification: dict[str, dict] = field(default_factory=dict)
    # Tables held back because a blocking check failed on what they are built from (citybrain/staleness.py):
    # "pool.<table>" -> its meta.stale_tables record. Empty when every table was published fresh.
    stale: dict[str, dict] = field(default_factory=dict)

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
    manifest: Mapping | None = None,
) -> Publication:
    """Copy the warehouse's pool schema, tier by tier, into a new version and make it live, atomically per tier.

    ``classification`` maps each pool table to its tier (see ``classification_from_manifest``). With the dbt
    ``manifest``, the privacy gate runs too (grades, re-identification risk: governance/publication_gate.py).
    The caller holds the warehouse lock (the warehouse is attached read-only). Success and refusal are both
    audited."""
    from citybrain.access import audit

    try:
        recover(directory)
        publication = _publish(warehouse, run_id, partitions, classification, directory, keep, manifest)
    except Exception as error:
        audit.append(
            "publication", outcome="error", run_id=run_id, detail=str(error), via="pipeline", user=None
        )
        raise
    _audit_published(
        publication,
        f"version {publication.version}; withheld (restricted): {', '.join(publication.withheld) or 'none'}",
    )
    return publication


def _audit_published(publication: Publication, detail: str) -> None:
    """The audit record of a version that went live (by its publication or by recovery)."""
    from citybrain.access import audit

    audit.append(
        "publication",
        outcome="ok",
        run_id=publication.run_id,
        via="pipeline",
        user=None,
        tiers=sorted(publication.tables),
        tables=sorted(t for tables in publication.tables.values() for t in tables),
        rows=publication.row_count,
        detail=detail,
    )


def _publish(warehouse, run_id, partitions, classification, directory, keep, manifest=None) -> Publication:
    if keep < 1:
        raise ValueError("keep must be at least 1: the live version is always kept")
    directory = directory or pool_dir()
    assignment, withheld = _assign_tiers(warehouse, classification)
    now = datetime.now(UTC)
    holds = (
        _holds(warehouse, run_id, partitions, manifest, directory, assignment, now)
        if manifest is not None
        else {}
    )
    # A table held back whole keeps content that passed the gate when it was published.
    fresh = {tier: [n for n in names if not _held_whole(holds, n)] for tier, names in assignment.items()}
    privacy = _privacy_gate(warehouse, fresh, manifest) if manifest is not None else None
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
                    temporary,
                    warehouse,
                    assignment[tier],
                    tier,
                    version,
                    run_id,
                    now,
                    partitions,
                    privacy,
                    manifest,
                    holds,
                    tier_path(tier, directory),
                )
                _fsync(temporary)
                os.chmod(temporary, 0o444)  # a published version is never changed
                os.replace(temporary, final)
                finals[tier] = final
            finally:
                temporary.unlink(missing_ok=True)
                temporary.with_name(temporary.name + ".wal").unlink(missing_ok=True)
    except BaseException as error:
        for final in finals.values():  # never live: nobody can be reading them
            final.unlink(missing_ok=True)
        if _disk_full(error):
            raise PublicationError(
                f"publication of version {version} failed: no space left in {directory} ({error}); the "
                f"previous version stays live, nothing of the new one was kept"
            ) from error
        raise
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
        kept_versions=[],
        grades=privacy.grade_record() if privacy else {},
        reidentification=privacy.risk_record() if privacy else {},
        stale={f"{PUBLISHED_SCHEMA}.{name}": hold.record() for name, hold in sorted(holds.items())},
    )
    # From here on the publication completes even if this process dies: recover() rolls it forward.
    intent = directory / INTENT_FILE
    try:
        _write_atomically(intent, json.dumps({**asdict(publication), "keep": keep}, ensure_ascii=False))
    except BaseException:
        for final in finals.values():
            final.unlink(missing_ok=True)
        raise
    _complete(directory, publication, keep)
    intent.unlink()
    _fsync_dir(directory)
    return publication


def _complete(directory: Path, publication: Publication, keep: int) -> None:
    """Switch every tier to the publication's version, prune, log it (idempotent: also the roll-forward)."""
    for tier, final in publication.paths.items():
        final = Path(final)
        _switch_live(directory / tier, final)
        publication.kept_versions = _prune(directory / tier / VERSIONS_DIR, keep, live=final)
    _remove_legacy(directory)
    published = list_publications(directory)
    if not published or published[-1].get("version") != publication.version:
        _append_line(directory / LOG_FILE, json.dumps(asdict(publication), ensure_ascii=False))


def recover(directory: Path | None = None) -> str | None:
    """Finish or clean up after a publication that was killed; returns the version it rolled forward, if any.

    The caller holds the warehouse lock (as for ``publish``): a publication running meanwhile would look
    like an interrupted one. Safe to call any time otherwise, and cheap when there is nothing to do."""
    directory = directory or pool_dir()
    if not directory.exists():
        return None
    for tier in PUBLISHED_TIERS:
        for leftover in [
            *(directory / tier / VERSIONS_DIR).glob(".*.duckdb.partial*"),  # version being written, its WAL
            *(directory / tier).glob(f".{tier_file_name(tier)}.*.link"),  # hard link never renamed
        ]:
            leftover.unlink(missing_ok=True)
    for leftover in directory.glob(f"{INTENT_FILE}.*.partial"):
        leftover.unlink(missing_ok=True)
    _truncate_torn_line(directory / LOG_FILE)
    rolled_forward = None
    intent = directory / INTENT_FILE
    if intent.exists():
        record = json.loads(intent.read_text(encoding="utf-8"))  # written atomically: whole or absent
        keep = record.pop("keep", DEFAULT_KEEP)
        publication = Publication(**record)
        if all(Path(path).exists() for path in publication.paths.values()):
            _complete(directory, publication, keep)
            rolled_forward = publication.version
            _audit_published(
                publication, f"version {publication.version}: interrupted publication completed by recovery"
            )
        intent.unlink()
        _fsync_dir(directory)
    for tier in PUBLISHED_TIERS:
        _remove_never_live(directory / tier)
    return rolled_forward


def _remove_never_live(tier_directory: Path) -> None:
    """Complete version files newer than the live one were written by a publication killed before its switch
    (no intent record): nobody ever read them; they would only count against ``keep``."""
    live = tier_directory / tier_file_name(tier_directory.name)
    versions = tier_directory / VERSIONS_DIR
    if not live.exists() or not versions.is_dir():
        return
    live_inode = live.stat().st_ino
    files = sorted(p for p in versions.glob("*.duckdb") if VERSION_PATTERN.match(p.stem))
    live_files = [p for p in files if p.stat().st_ino == live_inode]
    if not live_files:
        return
    for newer in files[files.index(live_files[0]) + 1 :]:
        newer.unlink()


def _disk_full(error: BaseException) -> bool:
    """ENOSPC (or a file-size limit) from Python or from DuckDB, which reports it as an IOException."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return True
    import duckdb

    return isinstance(error, duckdb.Error) and any(
        text in str(error) for text in ("No space left", "File too large", "Disk quota exceeded")
    )


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    try:
        with open(partial, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _truncate_torn_line(path: Path) -> None:
    """A process killed while appending leaves a last line without its newline: cut it off, so the next line
    does not get glued to it (the publication it began is either rolled forward from the intent record,
    which rewrites the line, or never happened)."""
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as handle:
            handle.truncate(data.rfind(b"\n") + 1)
            os.fsync(handle.fileno())


def _append_line(path: Path, line: str) -> None:
    _truncate_torn_line(path)
    with open(path, "ab") as handle:
        handle.write((line + "\n").encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())


def _assign_tiers(warehouse: Path, classification: Mapping[str, str | None]):
    """Which pool tables go to which tier; refuses when a table has no (valid) classification."""
    import duckdb

    with duckdb.connect(config=duckdb_config()) as con:
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


def _privacy_gate(warehouse: Path, assignment: dict[str, list[str]], manifest: Mapping):
    """Grades and re-identification risk of the tables as chosen for each tier; refuses on a violation."""
    import duckdb

    from citybrain.governance import publication_gate

    with duckdb.connect(config=duckdb_config()) as con:
        con.execute(f"ATTACH '{_sql_path(warehouse)}' AS warehouse (READ_ONLY)")
        report = publication_gate.check(con, "warehouse", assignment, manifest, PUBLISHED_SCHEMA)
    if report.problems:
        raise PublicationError(
            "refusing to publish the pool (privacy rules, docs/GOVERNANCE.md):\n  - "
            + "\n  - ".join(report.problems)
        )
    return report


def _holds(warehouse, run_id, partitions, manifest, directory, assignment, now) -> dict:
    """The tables this publication holds back (citybrain/staleness.py), from the run's failed blocking checks
    and the holds recorded in the live versions."""
    import duckdb

    from citybrain import staleness

    previous: dict = {}
    live = None
    for tier in PUBLISHED_TIERS:
        path = tier_path(tier, directory)
        if path.exists():
            with duckdb.connect(str(path), read_only=True) as con:
                previous |= staleness.read_holds(con)
                live = live or con.execute("SELECT version FROM meta.publication").fetchone()[0]
    with duckdb.connect(config=duckdb_config()) as con:
        con.execute(f"ATTACH '{_sql_path(warehouse)}' AS warehouse (READ_ONLY)")
        failures = (
            staleness.failed_blocking_checks(con, run_id, schema="warehouse.quality")
            if _has_table(con, "quality", "expectation_results")
            else {}
        )
    tables = [n for names in assignment.values() for n in names]
    return staleness.decide(
        tables, manifest, PUBLISHED_SCHEMA, failures, previous, list(partitions), now.isoformat(), live
    )


def _held_whole(holds: Mapping, name: str) -> bool:
    hold = holds.get(name.lower())
    return hold is not None and hold.whole


def _copy_table(con, name: str, hold, previous: bool, day_column: str | None) -> bool:
    """Create pool.<name> in the version being written: fresh from the warehouse, the previous version's
    content (held back whole), or fresh except its held days (taken from the previous version). False when
    a table held back whole was never published before (then it is left out)."""
    table = f'"{PUBLISHED_SCHEMA}"."{name}"'
    if hold is None:
        con.execute(f"CREATE TABLE {table} AS SELECT * FROM warehouse.{table}")
        return True
    has_previous = previous and _has_table(con, PUBLISHED_SCHEMA, name, database="previous")
    if hold.whole:
        if not has_previous:
            hold.kept_version = None
            return False
        con.execute(f"CREATE TABLE {table} AS SELECT * FROM previous.{table}")
        return True
    held = "[" + ", ".join("'" + d.replace("'", "''") + "'" for d in hold.held_days) + "]"
    day = f'CAST("{day_column}" AS VARCHAR)'
    kept = (
        f" UNION ALL BY NAME SELECT * FROM previous.{table} WHERE list_contains({held}, {day})"
        if has_previous
        else ""
    )
    con.execute(
        f"CREATE TABLE {table} AS SELECT * FROM warehouse.{table} WHERE NOT list_contains({held}, {day}){kept}"
    )
    return True


def _keep_held_lineage(con, holds: Mapping, names: list[str], day_columns: Mapping[str, str]) -> None:
    """meta.table_lineage of a held-back table is the previous version's (its content is), and of a table
    with held days the previous version's for those days."""
    if not any(n.lower() in holds for n in names):
        return
    has_previous = _has_table(con, "meta", "table_lineage", database="previous")
    for name in names:
        hold = holds.get(name.lower())
        if hold is None:
            continue
        if hold.whole:
            con.execute("DELETE FROM meta.table_lineage WHERE table_name = ?", [name])
            if has_previous:
                con.execute(
                    "INSERT INTO meta.table_lineage BY NAME SELECT * FROM previous.meta.table_lineage "
                    "WHERE table_name = ?",
                    [name],
                )
        elif day_columns.get(name.lower()):
            con.execute(
                "DELETE FROM meta.table_lineage WHERE table_name = ? AND list_contains(?, CAST(day AS VARCHAR))",
                [name, hold.held_days],
            )
            if has_previous:
                con.execute(
                    "INSERT INTO meta.table_lineage BY NAME SELECT * FROM previous.meta.table_lineage "
                    "WHERE table_name = ? AND list_contains(?, CAST(day AS VARCHAR))",
                    [name, hold.held_days],
                )


def _write_version(
    path,
    warehouse,
    names,
    tier,
    version,
    run_id,
    now,
    partitions,
    privacy=None,
    manifest=None,
    holds=None,
    previous_file: Path | None = None,
):
    import duckdb

    from citybrain import staleness

    holds = holds or {}
    day_columns = staleness.day_columns(manifest, PUBLISHED_SCHEMA) if manifest is not None else {}
    con = duckdb.connect(str(path), config=duckdb_config())
    try:
        con.execute(f"ATTACH '{_sql_path(warehouse)}' AS warehouse (READ_ONLY)")
        previous = bool(holds) and previous_file is not None and previous_file.exists()
        if previous:  # a held-back table keeps the live version's content
            con.execute(f"ATTACH '{_sql_path(previous_file)}' AS previous (READ_ONLY)")
        con.execute("BEGIN TRANSACTION")
        tables = {}
        con.execute(f'CREATE SCHEMA "{PUBLISHED_SCHEMA}"')
        published = []
        for name in names:
            hold = holds.get(name.lower())
            if not _copy_table(con, name, hold, previous, day_columns.get(name.lower())):
                continue  # held back and never published before: nothing to keep
            published.append(name)
            (tables[f"{PUBLISHED_SCHEMA}.{name}"],) = con.execute(
                f'SELECT count(*) FROM "{PUBLISHED_SCHEMA}"."{name}"'
            ).fetchone()
        con.execute("CREATE SCHEMA meta")
        from citybrain.governance import publication_gate

        publication_gate.write_meta(con, published, privacy)
        staleness.write_holds(con, [holds[n.lower()] for n in names if n.lower() in holds], tier)
        if tier == "open":  # optional differential privacy (catalog/privacy.yaml); off: nothing happens
            from citybrain.privacy import dp

            dp.apply(
                con,
                PUBLISHED_SCHEMA,
                published,
                run_id,
                version,
                kept=[n for n in published if _held_whole(holds, n)],
            )
        # The deliveries behind this version: every delivery currently loaded into the raw layer.
        con.execute(
            "CREATE TABLE meta.deliveries AS SELECT feed_id, provider, partition_key, source_file, file_sha256, "
            "batch_id, rows_received, rows_loaded, rows_quarantined, finished_at AS loaded_at "
            "FROM warehouse.raw.ingestion_log WHERE status = 'loaded'"
        )
        (deliveries,) = con.execute("SELECT count(*) FROM meta.deliveries").fetchone()
        if manifest is not None:  # which of them each table was built from (citybrain trace)
            from citybrain.lineage.tables import write_table_lineage

            write_table_lineage(con, published, manifest, PUBLISHED_SCHEMA)
            _keep_held_lineage(con, holds, published, day_columns)
        evaluated = warnings = 0
        if _has_table(con, "quality", "expectation_results"):
            con.execute(
                "CREATE TABLE meta.check_results AS SELECT * EXCLUDE (examples) "
                "FROM warehouse.quality.expectation_results WHERE run_id = ?",
                [run_id],
            )
            evaluated, warnings = con.execute(
                "SELECT count(*), count(*) FILTER (WHERE NOT success AND severity = 'warning') "
                "FROM meta.check_results"
            ).fetchone()
        con.execute(
            "CREATE TABLE meta.publication AS SELECT ? AS version, ? AS run_id, ?::TIMESTAMPTZ AS published_at, "
            "?::VARCHAR[] AS partitions, ? AS tier, ?::JSON AS table_rows",
            [version, run_id, now, partitions, tier, json.dumps(tables)],
        )
        con.execute("COMMIT")
        con.execute("DETACH warehouse")
        if previous:
            con.execute("DETACH previous")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return tables, deliveries, evaluated, warnings


def _has_table(con, schema: str, table: str, database: str = "warehouse") -> bool:
    """Whether ``database`` (attached to ``con``: the warehouse, or the previous version) has the table."""
    return bool(
        con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND schema_name = ? "
            "AND table_name = ?",
            [database, schema, table],
        ).fetchone()[0]
    )


def _switch_live(tier_directory: Path, version_file: Path) -> None:
    """Point the tier's live file at ``version_file`` with one atomic rename (a hard link, so the live file
    is a real file every client can open, and old readers keep their inode)."""
    live = tier_directory / f"citybrain_{tier_directory.name}.duckdb"
    if live.exists() and os.path.samefile(live, version_file):
        return  # already live (a roll-forward): renaming a hard link onto itself would leave the link behind
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
    lines = path.read_text(encoding="utf-8").split("\n")
    # The last line lacks its newline only if its writer was killed: it is not a publication (yet).
    return [json.loads(line) for line in lines[:-1] if line.strip()]


def live_version(directory: Path | None = None, tier: str = "open") -> str | None:
    """The version a tier's live file currently is (read from the file itself)."""
    path = tier_path(tier, directory)
    if not path.exists():
        return None
    import duckdb

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
