"""The privacy settings file (catalog/privacy.yaml): one place for every privacy threshold.

Read when needed, never at import, so a test or another city can point ``CITYBRAIN_PRIVACY`` at its own file.
"""

from __future__ import annotations

import copy
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from citybrain.settings import REPO_ROOT

PRIVACY_ENV = "CITYBRAIN_PRIVACY"
DEFAULT_PRIVACY_FILE = REPO_ROOT / "catalog" / "privacy.yaml"


def privacy_path() -> Path:
    return Path(os.environ.get(PRIVACY_ENV) or DEFAULT_PRIVACY_FILE).resolve()


def privacy_settings() -> dict[str, Any]:
    """The whole file as a mapping (empty if the file is empty): a copy, the caller may change it.

    Read every time, parsed once per content: dbt-duckdb opens a cursor for every node it runs and each
    one defines ``cb_small_cell_k()`` from this file, so parsing the YAML each time was some 500 parses
    a night (~5 s of a 1M-resident night). An edited file is parsed again at the next call."""
    return copy.deepcopy(_parsed(privacy_path().read_bytes()))


@lru_cache(maxsize=8)
def _parsed(content: bytes) -> dict[str, Any]:
    return yaml.safe_load(content.decode("utf-8")) or {}


def small_cell_k() -> int:
    """k of small-cell suppression: counts from 1 to k-1 are never published in the open tier."""
    k = int(privacy_settings().get("small_cell_k", 10))
    if k < 2:
        raise ValueError(f"{privacy_path()}: small_cell_k must be at least 2, got {k}")
    return k


def min_equivalence_class() -> int:
    """Smallest equivalence class (k of k-anonymity, GB/T 37964) a conditional record-level table may have
    over its quasi-identifiers when published; a smaller class blocks the publication."""
    settings = privacy_settings()
    if "min_equivalence_class" not in settings:
        raise ValueError(f"{privacy_path()}: min_equivalence_class is not set (the minimum k, e.g. 5)")
    k = int(settings["min_equivalence_class"])
    if k < 2:
        raise ValueError(f"{privacy_path()}: min_equivalence_class must be at least 2, got {k}")
    return k


def differential_privacy_section() -> dict[str, Any]:
    """The ``differential_privacy`` section (empty when absent: off). Parsed and validated by
    ``citybrain.privacy.dp.dp_settings``."""
    return privacy_settings().get("differential_privacy") or {}
