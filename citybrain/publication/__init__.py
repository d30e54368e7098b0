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

from citybrain.pool_layout import pool_dir, tier_path, tier_paths
from citybrain.publication.record import (
    DEFAULT_KEEP,
    INTENT_FILE,
    LOG_FILE,
    VERSION_PATTERN,
    VERSIONS_DIR,
    Publication,
    PublicationError,
    list_publications,
    live_version,
)
from citybrain.publication.release import publish, recover
from citybrain.publication.tiers import classification_from_manifest

__all__ = [
    "DEFAULT_KEEP",
    "INTENT_FILE",
    "LOG_FILE",
    "VERSIONS_DIR",
    "VERSION_PATTERN",
    "Publication",
    "PublicationError",
    "classification_from_manifest",
    "list_publications",
    "live_version",
    "pool_dir",
    "publish",
    "recover",
    "tier_path",
    "tier_paths",
]
