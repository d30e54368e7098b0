"""Which pool table goes to which tier, what the privacy gate says of that choice, and which tables are
held back: the decisions a publication takes before it writes anything."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from citybrain.pool_layout import PUBLISHED_SCHEMA, PUBLISHED_TIERS, tier_path
from citybrain.publication.files import sql_path
from citybrain.publication.record import PublicationError
from citybrain.settings import duckdb_config
from citybrain.vocabulary import TIERS


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


def assign_tiers(warehouse: Path, classification: Mapping[str, str | None]):
    """Which pool tables go to which tier; refuses when a table has no (valid) classification."""
    import duckdb

    with duckdb.connect(config=duckdb_config()) as con:
        con.execute(f"ATTACH '{sql_path(warehouse)}' AS warehouse (READ_ONLY)")
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


def privacy_gate(warehouse: Path, assignment: dict[str, list[str]], manifest: Mapping):
    """Grades and re-identification risk of the tables as chosen for each tier; refuses on a violation."""
    import duckdb

    from citybrain.governance import publication_gate

    with duckdb.connect(config=duckdb_config()) as con:
        con.execute(f"ATTACH '{sql_path(warehouse)}' AS warehouse (READ_ONLY)")
        report = publication_gate.check(con, "warehouse", assignment, manifest, PUBLISHED_SCHEMA)
    if report.problems:
        raise PublicationError(
            "refusing to publish the pool (privacy rules, docs/GOVERNANCE.md):\n  - "
            + "\n  - ".join(report.problems)
        )
    return report


def held_tables(warehouse, run_id, partitions, manifest, directory, assignment, now) -> dict:
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
        con.execute(f"ATTACH '{sql_path(warehouse)}' AS warehouse (READ_ONLY)")
        failures = staleness.failed_blocking_checks(con, run_id, schema="warehouse.quality")
    tables = [n for names in assignment.values() for n in names]
    return staleness.decide(
        tables, manifest, PUBLISHED_SCHEMA, failures, previous, list(partitions), now.isoformat(), live
    )
