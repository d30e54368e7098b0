"""The publication itself: decide, write every tier's version, record the intent, switch the tiers and
log it; and ``recover``, which rolls an interrupted publication forward or cleans up after it."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from citybrain.pool_layout import PUBLISHED_SCHEMA, PUBLISHED_TIERS, pool_dir, tier_file_name, tier_path
from citybrain.publication.files import (
    append_line,
    disk_full,
    fsync,
    fsync_dir,
    prune,
    remove_legacy,
    remove_never_live,
    switch_live,
    truncate_torn_line,
    write_atomically,
)
from citybrain.publication.record import (
    DEFAULT_KEEP,
    INTENT_FILE,
    LOG_FILE,
    VERSIONS_DIR,
    Publication,
    PublicationError,
    list_publications,
)
from citybrain.publication.tiers import assign_tiers, held_tables, privacy_gate
from citybrain.publication.version_file import held_whole, write_version


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
    assignment, withheld = assign_tiers(warehouse, classification)
    now = datetime.now(UTC)
    holds = (
        held_tables(warehouse, run_id, partitions, manifest, directory, assignment, now)
        if manifest is not None
        else {}
    )
    # A table held back whole keeps content that passed the gate when it was published.
    fresh = {tier: [n for n in names if not held_whole(holds, n)] for tier, names in assignment.items()}
    privacy = privacy_gate(warehouse, fresh, manifest) if manifest is not None else None
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
                tables[tier], deliveries, evaluated, warnings = write_version(
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
                fsync(temporary)
                os.chmod(temporary, 0o444)  # a published version is never changed
                os.replace(temporary, final)
                finals[tier] = final
            finally:
                temporary.unlink(missing_ok=True)
                temporary.with_name(temporary.name + ".wal").unlink(missing_ok=True)
    except BaseException as error:
        for final in finals.values():  # never live: nobody can be reading them
            final.unlink(missing_ok=True)
        if disk_full(error):
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
        write_atomically(intent, json.dumps({**asdict(publication), "keep": keep}, ensure_ascii=False))
    except BaseException:
        for final in finals.values():
            final.unlink(missing_ok=True)
        raise
    _complete(directory, publication, keep)
    intent.unlink()
    fsync_dir(directory)
    return publication


def _complete(directory: Path, publication: Publication, keep: int) -> None:
    """Switch every tier to the publication's version, prune, log it (idempotent: also the roll-forward)."""
    for tier, final in publication.paths.items():
        final = Path(final)
        switch_live(directory / tier, final)
        publication.kept_versions = prune(directory / tier / VERSIONS_DIR, keep, live=final)
    remove_legacy(directory)
    published = list_publications(directory)
    if not published or published[-1].get("version") != publication.version:
        append_line(directory / LOG_FILE, json.dumps(asdict(publication), ensure_ascii=False))


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
    truncate_torn_line(directory / LOG_FILE)
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
        fsync_dir(directory)
    for tier in PUBLISHED_TIERS:
        remove_never_live(directory / tier)
    return rolled_forward
