"""Where the published pool is: its directory, its tiers and their live files.

Its own module because the readers of the pool (``citybrain.access``, ``citybrain.lineage.trace``) need
the layout and nothing else of the publication, which in turn records its lineage and audits itself: with
the layout here, neither package imports the other back.
"""

from __future__ import annotations

import os
from pathlib import Path

from citybrain import settings
from citybrain.vocabulary import POOL_SCHEMA as PUBLISHED_SCHEMA
from citybrain.vocabulary import PUBLISHED_TIERS

__all__ = ["PUBLISHED_SCHEMA", "PUBLISHED_TIERS", "pool_dir", "tier_file_name", "tier_path", "tier_paths"]


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
