"""Column-level lineage of the pool: which raw columns each pool column is derived from.

Computed by the same SQL lineage the classification check uses (``citybrain.governance.classification``, from
dbt's compiled SQL), so there is one reading of the models. Only unmasked derivations count, as in that
check: a column computed through a masking or generalising function (pseudonym, age band, grid cell) or only
from reference data shows no raw origin.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

RAW_PREFIX = "raw."
# The compiled SQL of the models each dbt step built (written by the step's classification check, beside the
# project's manifest in dbt_project/target): the parse-time manifest has no compiled SQL to read lineage from.
COMPILED_STORE = "governance_compiled_code.json"


def column_origins(
    manifest: Mapping[str, Any], catalog, compiled_store: Path | None = None, only: list[str] | None = None
) -> dict[str, dict[str, list[tuple[str, str]]]]:
    """pool table -> column -> sorted [(raw relation, raw column)], for every pool model (or the unique ids
    ``only``) whose compiled SQL is known (the manifest's own, or the governance store of compiled SQL
    written by each dbt step)."""
    from citybrain.governance.classification import column_lineage
    from citybrain.vocabulary import pool_models

    nodes = manifest.get("nodes", {})
    compiled: dict[str, str] = {}
    if compiled_store is not None:
        try:
            stored = json.loads(compiled_store.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            stored = {}
        compiled = {
            uid: entry["sql"]
            for uid, entry in stored.items()
            if uid in nodes and entry.get("checksum") == nodes[uid].get("checksum", {}).get("checksum")
        }
    targets = [uid for uid in pool_models(manifest) if only is None or uid in only]
    relations = column_lineage(manifest, catalog, targets, compiled)
    result: dict[str, dict[str, list[tuple[str, str]]]] = {}
    for uid in targets:
        relation = relations.get(uid)
        if relation is None:
            continue
        node = nodes[uid]
        table = node.get("alias") or node["name"]
        result[table] = {
            column: sorted({(o.relation, o.column) for o in origins if o.relation.startswith(RAW_PREFIX)})
            for column, origins in relation.columns.items()
        }
    return result


def feed_columns(origins: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """[(raw relation, column)] of ``column_origins`` as (feed id, column): raw.<feed> is the feed's table."""
    return [(relation.removeprefix(RAW_PREFIX), column) for relation, column in origins]
