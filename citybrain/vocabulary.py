"""The platform's shared words, defined once: the pool's schema, the tiers, the run tags, the pool models.

Every module that needs one of these imports it from here, so renaming the pool schema or adding a tier is
one edit, and a reader finds what "the pool" or "a tier" means in one file. Grades have their own home
(``citybrain/governance/grades.py``) because their rules live with them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

POOL_SCHEMA = "pool"  # the dbt schema of the shared public data pool, and of its published copies

# Classification tiers from the most open to the most restricted; restricted data never leaves the warehouse.
Tier = Literal["open", "conditional", "restricted"]
TIERS: tuple[str, ...] = ("open", "conditional", "restricted")
PUBLISHED_TIERS: tuple[str, ...] = ("open", "conditional")
TIER_RANK = {tier: rank for rank, tier in enumerate(TIERS)}

# Dagster run tags the platform sets and reads (the UI filters runs by them).
LAKE_TAG = "citybrain/lake"  # the warehouse a run wrote to
TRIGGER_TAG = "citybrain/trigger"  # what started the run: schedule, landing sensor, backfill, by hand
FILE_TAG = "citybrain/file"  # the landing file a sensor run was started for
PROCESS_TAG = "citybrain/process"  # host:pid:start time of the `citybrain run` process executing the run


def is_pool_model(node: Mapping[str, Any]) -> bool:
    """A dbt manifest node that is a model built into the pool schema (pool, indicators, scorecards)."""
    return node.get("resource_type") == "model" and (node.get("schema") or "").lower() == POOL_SCHEMA


def pool_models(manifest: Mapping[str, Any]) -> dict[str, dict]:
    """The pool's models of a dbt manifest, by unique id."""
    return {uid: node for uid, node in manifest.get("nodes", {}).items() if is_pool_model(node)}
