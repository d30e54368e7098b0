"""Which pool tables a publication holds back, and why: publication per table, not all or nothing.

A failed blocking expectation no longer stops the night. It holds back the pool tables built from the
dataset it failed on (the dataset itself, or anything downstream of it in the dbt manifest: a raw feed, a
staging or intermediate model, another pool table). Every other table is published fresh. A held-back table
keeps the content of the previous published version, and the version records it as stale in
``meta.stale_tables``: why (the failed checks), since when, and which version's content it keeps.

Daily facts are incremental in the warehouse. The failed days stay there, so they are remembered:

* a daily table whose checks fail on some days is held back whole that night, and those days become
  *held days*;
* on a later night that passes, the table is published fresh except for its held days, whose rows come from
  the previous version (which never had the failed rows). A held day is released once a run that covers
  that day passes, for example the rerun of the day after its late delivery arrived;
* a table built from a table with held days (the monthly indicators) is held back whole until they are
  released, because it was rebuilt from the warehouse rows of those days.

A failure on a dataset that is not daily (a registry snapshot, say) holds back the whole table, and the
run's days are held. The rules live here and only here; ``citybrain/publication/`` applies them when it
writes a version. See docs/POOL.md "Publication per table".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from citybrain.lineage.tables import daily_day_column
from citybrain.quality import dbt_tests

STALE_TABLE = "stale_tables"  # in the meta schema of every published version


@dataclass
class Hold:
    """A pool table held back (whole, or only some of its days) in one publication."""

    table: str
    whole: bool  # True: the table's content is the previous version's; False: only its held days are
    reason: str
    failed_checks: list[str] = field(default_factory=list)  # "<dataset>[<partition>]" of the failures
    held_days: list[str] = field(default_factory=list)  # days of a daily table whose rows are kept back
    stale_since: str = ""  # ISO time of the first publication that held it back, in this spell
    kept_version: str | None = None  # the version whose content it keeps (None: it was never published)

    def record(self) -> dict:
        return asdict(self)


def failed_blocking_checks(con, run_id: str, schema: str = "quality") -> dict[str, set[str | None]]:
    """Dataset (``<schema>.<table>``) -> partitions with a failed blocking check in the run, read from the
    database ``con`` has open (attached as ``warehouse`` or main): blocking expectations in
    ``quality.expectation_results`` and error-severity dbt tests in ``quality.dbt_test_results`` (a dbt test
    checks the whole table: partition None)."""
    failures: dict[str, set[str | None]] = {}
    database = schema.rsplit(".", 1)[0] if "." in schema else None
    (gx_results,) = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'quality' AND table_name = "
        "'expectation_results' AND database_name = coalesce(?, current_database())",
        [database],
    ).fetchone()
    if gx_results:
        rows = con.execute(
            f"SELECT DISTINCT suite, partition_key FROM {schema}.expectation_results "
            "WHERE run_id = ? AND severity = 'blocking' AND NOT success",
            [run_id],
        ).fetchall()
        for dataset, partition in rows:
            failures.setdefault(dataset.lower(), set()).add(partition)
    for dataset in dbt_tests.failed_datasets(con, run_id, schema):
        failures.setdefault(dataset, set()).add(None)
    return failures


def dataset_name(node: Mapping[str, Any]) -> str:
    """How a manifest node is named in the expectation results: ``<schema>.<table>``."""
    if node.get("resource_type") == "source":
        return f"{node['source_name']}.{node.get('identifier') or node['name']}".lower()
    return f"{node.get('schema')}.{node.get('alias') or node['name']}".lower()


def upstream_datasets(manifest: Mapping[str, Any], schema: str) -> dict[str, set[str]]:
    """Pool table -> every dataset it is built from (sources, models, snapshots, transitively), itself included."""
    nodes, sources = manifest.get("nodes", {}), manifest.get("sources", {})
    found: dict[str, set[str]] = {}

    def visit(uid: str) -> set[str]:
        if uid in found:
            return found[uid]
        node = nodes.get(uid) or sources.get(uid)
        if node is None:
            return set()
        found[uid] = {dataset_name(node)}
        for parent in node.get("depends_on", {}).get("nodes", []):
            found[uid] |= visit(parent)
        return found[uid]

    return {
        (node.get("alias") or node["name"]).lower(): visit(uid)
        for uid, node in nodes.items()
        if node.get("resource_type") == "model" and (node.get("schema") or "").lower() == schema
    }


def day_columns(manifest: Mapping[str, Any], schema: str) -> dict[str, str]:
    """Daily pool table -> its day column (the tables whose days can be held back one by one)."""
    return {
        (node.get("alias") or node["name"]).lower(): column
        for node in manifest.get("nodes", {}).values()
        if node.get("resource_type") == "model"
        and (node.get("schema") or "").lower() == schema
        and (column := daily_day_column(node))
    }


def never_held(manifest: Mapping[str, Any], schema: str) -> set[str]:
    """Pool tables whose model sets ``meta.hold_back: false``: the quality scorecards, which report the failed
    checks and would otherwise be held back by every one of them."""
    return {
        (node.get("alias") or node["name"]).lower()
        for node in manifest.get("nodes", {}).values()
        if node.get("resource_type") == "model"
        and (node.get("schema") or "").lower() == schema
        and ((node.get("config") or {}).get("meta") or node.get("meta") or {}).get("hold_back") is False
    }


def decide(
    tables: Iterable[str],
    manifest: Mapping[str, Any],
    schema: str,
    failures: Mapping[str, set[str | None]],
    previous: Mapping[str, Hold],
    run_days: list[str],
    now: str,
    live_version: str | None,
) -> dict[str, Hold]:
    """The holds of this publication, by table. ``previous``: the holds recorded in the live version."""
    upstream = upstream_datasets(manifest, schema)
    daily = day_columns(manifest, schema)
    never = never_held(manifest, schema)
    holds: dict[str, Hold] = {}
    tables = [t.lower() for t in tables if t.lower() not in never]
    for table in sorted(tables):
        failed = sorted(
            f"{dataset}[{partition}]" if partition else dataset
            for dataset in upstream.get(table, {f"{schema}.{table}"})
            for partition in failures.get(dataset, ())
        )
        before = previous.get(table)
        carried = set(before.held_days) if before else set()
        if failed:
            days = {p for d in upstream.get(table, ()) for p in failures.get(d, ()) if p in run_days}
            # A failure without a day (a registry) taints every day the run rebuilt.
            if any(None in failures.get(d, ()) for d in upstream.get(table, ())):
                days |= set(run_days)
            holds[table] = Hold(
                table,
                whole=True,
                reason="blocking checks failed on what it is built from: " + ", ".join(failed),
                failed_checks=failed,
                held_days=sorted(carried | days) if table in daily else [],
                stale_since=before.stale_since if before else now,
                kept_version=(before.kept_version if before and before.whole else live_version),
            )
        elif table in daily and carried - set(run_days):
            remaining = sorted(carried - set(run_days))
            holds[table] = Hold(
                table,
                whole=False,
                reason="days held back until a run that rebuilds them passes: " + ", ".join(remaining),
                failed_checks=list(before.failed_checks),
                held_days=remaining,
                stale_since=before.stale_since,
                kept_version=live_version,
            )
    # Built from a table with held days: the warehouse rows of those days went into it.
    for table in sorted(tables):
        if table in holds:
            continue
        tainted = sorted(
            other
            for other, hold in holds.items()
            if other != table and hold.held_days and f"{schema}.{other}" in upstream.get(table, ())
        )
        if tainted:
            before = previous.get(table)
            holds[table] = Hold(
                table,
                whole=True,
                reason="built from tables with held-back days: " + ", ".join(tainted),
                failed_checks=sorted({c for t in tainted for c in holds[t].failed_checks}),
                stale_since=before.stale_since if before else now,
                kept_version=(before.kept_version if before and before.whole else live_version),
            )
    return holds


def read_holds(con) -> dict[str, Hold]:
    """The holds recorded in the published version ``con`` has open; none in a version written before holds
    existed."""
    (exists,) = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = 'meta' AND table_name = ?",
        [STALE_TABLE],
    ).fetchone()
    if not exists:
        return {}
    result = con.execute(f"SELECT * EXCLUDE (tier) FROM meta.{STALE_TABLE}")
    names = [d[0] for d in result.description]
    holds = {}
    for row in result.fetchall():
        record = dict(zip(names, row, strict=True))
        record["failed_checks"] = list(record["failed_checks"] or [])
        record["held_days"] = list(record["held_days"] or [])
        holds[record["table"]] = Hold(**record)
    return holds


def write_holds(con, holds: Iterable[Hold], tier: str) -> None:
    """``meta.stale_tables`` of a version being written: one row per held-back table of the tier."""
    con.execute(
        f'CREATE TABLE meta.{STALE_TABLE} ("table" VARCHAR, whole BOOLEAN, reason VARCHAR, '
        "failed_checks VARCHAR[], held_days VARCHAR[], stale_since VARCHAR, kept_version VARCHAR, tier VARCHAR)"
    )
    rows = [
        (h.table, h.whole, h.reason, h.failed_checks, h.held_days, h.stale_since, h.kept_version, tier)
        for h in holds
    ]
    if rows:
        con.executemany(f"INSERT INTO meta.{STALE_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
