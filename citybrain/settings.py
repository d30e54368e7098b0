"""Where City Brain Lake keeps its files.

Everything is derived from one root, ``CITYBRAIN_HOME`` (default: ``data/`` in the checkout), so a
second lake, a test or a benchmark is just another directory. Functions, not module constants: the
environment is read when a path is needed, never at import time.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def home() -> Path:
    return Path(os.environ.get("CITYBRAIN_HOME") or REPO_ROOT / "data").resolve()


def landing_dir() -> Path:
    """Where departments and operators deliver files (the landing zone)."""
    return Path(os.environ.get("CITYBRAIN_LANDING") or home() / "landing").resolve()


def warehouse_path() -> Path:
    return Path(os.environ.get("CITYBRAIN_WAREHOUSE") or home() / "warehouse.duckdb").resolve()


def catalog_path() -> Path:
    return Path(os.environ.get("CITYBRAIN_CATALOG") or REPO_ROOT / "catalog" / "sources.yaml").resolve()


def demo_dir() -> Path:
    """Demo-only state that is not a delivery: the hotline centre's ticket store, ground truth."""
    return home() / "demo"
