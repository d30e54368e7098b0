"""What a publication is and where it is recorded: the version naming, ``publications.jsonl``, the
record of one publication, and which version each tier's live file is."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from citybrain.pool_layout import pool_dir, tier_path

VERSIONS_DIR = "versions"

LOG_FILE = "publications.jsonl"

DEFAULT_KEEP = 7

VERSION_PATTERN = re.compile(r"^\d{8}T\d{6}\d*Z_[0-9a-z]+$")

INTENT_FILE = ".publishing.json"  # a publication whose versions are complete and whose switch has begun

# The single-file layout before tiers: removed at the first tiered publication, because it mixed tiers.
LEGACY_POOL_FILE = "citybrain_pool.duckdb"


class PublicationError(RuntimeError):
    """The pool cannot be published as it is (e.g. a table nobody classified)."""


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
