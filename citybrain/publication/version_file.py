"""Writing one tier's version file: the pool tables (fresh, or held back from the previous version),
the ``meta`` schema (publication, deliveries, lineage, check results, grades, stale tables) and the
optional differential-privacy noise of the open tier."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from citybrain.pool_layout import PUBLISHED_SCHEMA
from citybrain.publication.files import sql_path
from citybrain.settings import duckdb_config


def _copy_table(con, name: str, hold, previous: bool, day_column: str | None) -> bool:
    """Create pool.<name> in the version being written: fresh from the warehouse, the previous version's
    content (held back whole), or fresh except its held days (taken from the previous version). False when
    a table held back whole was never published before (then it is left out)."""
    table = f'"{PUBLISHED_SCHEMA}"."{name}"'
    if hold is None:
        con.execute(f"CREATE TABLE {table} AS SELECT * FROM warehouse.{table}")
        return True
    has_previous = previous and has_table(con, PUBLISHED_SCHEMA, name, database="previous")
    if hold.whole:
        if not has_previous:
            hold.kept_version = None
            return False
        con.execute(f"CREATE TABLE {table} AS SELECT * FROM previous.{table}")
        return True
    held = "[" + ", ".join("'" + d.replace("'", "''") + "'" for d in hold.held_days) + "]"
    day = f'CAST("{day_column}" AS VARCHAR)'
    kept = (
        f" UNION ALL BY NAME SELECT * FROM previous.{table} WHERE list_contains({held}, {day})"
        if has_previous
        else ""
    )
    con.execute(
        f"CREATE TABLE {table} AS SELECT * FROM warehouse.{table} WHERE NOT list_contains({held}, {day}){kept}"
    )
    return True


def _keep_held_lineage(con, holds: Mapping, names: list[str], day_columns: Mapping[str, str]) -> None:
    """meta.table_lineage of a held-back table is the previous version's (its content is), and of a table
    with held days the previous version's for those days."""
    if not any(n.lower() in holds for n in names):
        return
    has_previous = has_table(con, "meta", "table_lineage", database="previous")
    for name in names:
        hold = holds.get(name.lower())
        if hold is None:
            continue
        if hold.whole:
            con.execute("DELETE FROM meta.table_lineage WHERE table_name = ?", [name])
            if has_previous:
                con.execute(
                    "INSERT INTO meta.table_lineage BY NAME SELECT * FROM previous.meta.table_lineage "
                    "WHERE table_name = ?",
                    [name],
                )
        elif day_columns.get(name.lower()):
            con.execute(
                "DELETE FROM meta.table_lineage WHERE table_name = ? AND list_contains(?, CAST(day AS VARCHAR))",
                [name, hold.held_days],
            )
            if has_previous:
                con.execute(
                    "INSERT INTO meta.table_lineage BY NAME SELECT * FROM previous.meta.table_lineage "
                    "WHERE table_name = ? AND list_contains(?, CAST(day AS VARCHAR))",
                    [name, hold.held_days],
                )


def write_version(
    path,
    warehouse,
    names,
    tier,
    version,
    run_id,
    now,
    partitions,
    privacy=None,
    manifest=None,
    holds=None,
    previous_file: Path | None = None,
):
    import duckdb

    from citybrain import staleness

    holds = holds or {}
    day_columns = staleness.day_columns(manifest, PUBLISHED_SCHEMA) if manifest is not None else {}
    con = duckdb.connect(str(path), config=duckdb_config())
    try:
        con.execute(f"ATTACH '{sql_path(warehouse)}' AS warehouse (READ_ONLY)")
        previous = bool(holds) and previous_file is not None and previous_file.exists()
        if previous:  # a held-back table keeps the live version's content
            con.execute(f"ATTACH '{sql_path(previous_file)}' AS previous (READ_ONLY)")
        con.execute("BEGIN TRANSACTION")
        tables = {}
        con.execute(f'CREATE SCHEMA "{PUBLISHED_SCHEMA}"')
        published = []
        for name in names:
            hold = holds.get(name.lower())
            if not _copy_table(con, name, hold, previous, day_columns.get(name.lower())):
                continue  # held back and never published before: nothing to keep
            published.append(name)
            (tables[f"{PUBLISHED_SCHEMA}.{name}"],) = con.execute(
                f'SELECT count(*) FROM "{PUBLISHED_SCHEMA}"."{name}"'
            ).fetchone()
        con.execute("CREATE SCHEMA meta")
        from citybrain.governance import publication_gate

        publication_gate.write_meta(con, published, privacy)
        staleness.write_holds(con, [holds[n.lower()] for n in names if n.lower() in holds], tier)
        if tier == "open":  # optional differential privacy (catalog/privacy.yaml); off: nothing happens
            from citybrain.privacy import dp

            dp.apply(
                con,
                PUBLISHED_SCHEMA,
                published,
                run_id,
                version,
                kept=[n for n in published if held_whole(holds, n)],
            )
        # The deliveries behind this version: every delivery currently loaded into the raw layer.
        con.execute(
            "CREATE TABLE meta.deliveries AS SELECT feed_id, provider, partition_key, source_file, file_sha256, "
            "batch_id, rows_received, rows_loaded, rows_quarantined, finished_at AS loaded_at "
            "FROM warehouse.raw.ingestion_log WHERE status = 'loaded'"
        )
        (deliveries,) = con.execute("SELECT count(*) FROM meta.deliveries").fetchone()
        if manifest is not None:  # which of them each table was built from (citybrain trace)
            from citybrain.lineage.tables import write_table_lineage

            write_table_lineage(con, published, manifest, PUBLISHED_SCHEMA)
            _keep_held_lineage(con, holds, published, day_columns)
        evaluated = warnings = 0
        if has_table(con, "quality", "expectation_results"):
            con.execute(
                "CREATE TABLE meta.check_results AS SELECT * EXCLUDE (examples) "
                "FROM warehouse.quality.expectation_results WHERE run_id = ?",
                [run_id],
            )
            evaluated, warnings = con.execute(
                "SELECT count(*), count(*) FILTER (WHERE NOT success AND severity = 'warning') "
                "FROM meta.check_results"
            ).fetchone()
        if has_table(
            con, "quality", "dbt_test_results"
        ):  # citybrain trace lists them beside the expectations
            con.execute(
                "CREATE TABLE meta.dbt_test_results AS SELECT * FROM warehouse.quality.dbt_test_results "
                "WHERE run_id = ?",
                [run_id],
            )
        con.execute(
            "CREATE TABLE meta.publication AS SELECT ? AS version, ? AS run_id, ?::TIMESTAMPTZ AS published_at, "
            "?::VARCHAR[] AS partitions, ? AS tier, ?::JSON AS table_rows",
            [version, run_id, now, partitions, tier, json.dumps(tables)],
        )
        con.execute("COMMIT")
        con.execute("DETACH warehouse")
        if previous:
            con.execute("DETACH previous")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return tables, deliveries, evaluated, warnings


def has_table(con, schema: str, table: str, database: str = "warehouse") -> bool:
    """Whether ``database`` (attached to ``con``: the warehouse, or the previous version) has the table."""
    return bool(
        con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND schema_name = ? "
            "AND table_name = ?",
            [database, schema, table],
        ).fetchone()[0]
    )


def held_whole(holds: Mapping, name: str) -> bool:
    hold = holds.get(name.lower())
    return hold is not None and hold.whole
