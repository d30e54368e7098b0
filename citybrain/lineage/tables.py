"""Per published table, the deliveries (file, SHA-256, loading run) its rows were built from: meta.table_lineage.

Read from the dbt manifest (which raw feeds each pool model reads, through which models and snapshots) and the
raw layer's ingestion log (which deliveries of those feeds are current). Written into every published version
beside meta.publication and meta.check_results, so ``citybrain trace`` answers from the version itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from typing import Any

RAW_SOURCE = "raw"


def _sql(name: str) -> str:
    return resources.files("citybrain.lineage").joinpath("sql", name).read_text(encoding="utf-8")


def upstream_feeds(manifest: Mapping[str, Any], unique_id: str) -> dict[str, bool]:
    """Raw feeds a node reads, directly or through models and snapshots: feed id -> read through a snapshot."""
    nodes, sources = manifest.get("nodes", {}), manifest.get("sources", {})

    @cache
    def visit(uid: str) -> tuple[tuple[str, bool], ...]:
        if uid in sources:
            source = sources[uid]
            return ((source["name"], False),) if source.get("source_name") == RAW_SOURCE else ()
        node = nodes.get(uid)
        if node is None:
            return ()
        snapshot = node.get("resource_type") == "snapshot"
        found: dict[str, bool] = {}
        for parent in node.get("depends_on", {}).get("nodes", []):
            for feed, via in visit(parent):
                found[feed] = found.get(feed, False) or via or snapshot
        return tuple(sorted(found.items()))

    return dict(visit(unique_id))


def daily_day_column(node: Mapping[str, Any]) -> str | None:
    """The day column of a daily fact (tag ``daily``, incremental by day), else None."""
    config = node.get("config", {})
    if "daily" in node.get("tags", []) and config.get("materialized") == "incremental":
        return config.get("unique_key")
    return None


def pool_nodes(
    manifest: Mapping[str, Any], schema: str, names: Iterable[str]
) -> dict[str, Mapping[str, Any]]:
    """The models of ``names`` built into ``schema``, by table name."""
    wanted = {n.lower() for n in names}
    return {
        (node.get("alias") or node["name"]).lower(): node
        for node in manifest.get("nodes", {}).values()
        if node.get("resource_type") == "model"
        and (node.get("schema") or "").lower() == schema.lower()
        and (node.get("alias") or node["name"]).lower() in wanted
    }


def write_table_lineage(con, names: Iterable[str], manifest: Mapping[str, Any], schema: str) -> int:
    """Create meta.table_lineage in the version being written (``con`` has the warehouse attached as
    ``warehouse``); returns its row count. Also meta.table_days: each daily table's day column."""
    import pyarrow as pa

    upstream = {"table_name": [], "feed_id": [], "daily": [], "via_snapshot": []}
    days = {"table_name": [], "day_column": []}
    for table, node in sorted(pool_nodes(manifest, schema, names).items()):
        day_column = daily_day_column(node)
        days["table_name"].append(table)
        days["day_column"].append(day_column)
        for feed, via_snapshot in upstream_feeds(manifest, node["unique_id"]).items():
            upstream["table_name"].append(table)
            upstream["feed_id"].append(feed)
            upstream["daily"].append(day_column is not None)
            upstream["via_snapshot"].append(via_snapshot)
    con.register("upstream", pa.table(upstream, schema=_upstream_schema()))
    try:
        con.execute("CREATE TABLE meta.table_lineage AS " + _sql("table_lineage.sql"))
    finally:
        con.unregister("upstream")
    con.register(
        "table_days",
        pa.table(days, schema=pa.schema([("table_name", pa.string()), ("day_column", pa.string())])),
    )
    try:
        con.execute("CREATE TABLE meta.table_days AS SELECT * FROM table_days")
    finally:
        con.unregister("table_days")
    (rows,) = con.execute("SELECT count(*) FROM meta.table_lineage").fetchone()
    return rows


def _upstream_schema():
    import pyarrow as pa

    return pa.schema(
        [
            ("table_name", pa.string()),
            ("feed_id", pa.string()),
            ("daily", pa.bool_()),
            ("via_snapshot", pa.bool_()),
        ]
    )
