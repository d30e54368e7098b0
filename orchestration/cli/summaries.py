"""What the commands print after a run: deliveries per feed, the quality gate's decision, the published
tiers with an example query. Read from the warehouse, the run's result and the published tier files."""

from __future__ import annotations

from pathlib import Path

RUN_SUMMARY_SQL = Path(__file__).with_name("sql") / "run_summary.sql"

EXAMPLE_QUERY = """\
SELECT d.district_name, i.month, i.registered_population,
       round(i.est_resident_population) AS est_residents,
       round(i.beds_per_1000_residents, 2) AS beds_per_1000,
       round(i.share_residents_near_medical, 3) AS near_medical
FROM pool.ind_district_monthly AS i JOIN pool.dim_district AS d USING (district_code)
ORDER BY est_residents DESC LIMIT 5"""


def print_gate_summary(result) -> None:
    """What the quality gate decided: checks run and failed, and which pool version is live."""
    from citybrain.publication import live_version, tier_paths
    from citybrain.quality.data_docs import data_docs_index

    evaluations = result.get_asset_check_evaluations()
    if not evaluations:
        return
    failed = [e for e in evaluations if not e.passed]
    blocking = [e for e in failed if e.severity.value == "ERROR" or e.blocking]
    print(f"\n  quality gate: {len(evaluations)} checks, {len(failed)} failed ({len(blocking)} blocking)")
    for evaluation in sorted(failed, key=lambda e: (e not in blocking, e.asset_key.to_user_string())):
        kind = "BLOCKING" if evaluation in blocking else "warning "
        print(
            f"    {kind} {evaluation.asset_key.to_user_string()}:{evaluation.check_name}  {evaluation.description or ''}"
        )
    publications = [
        m
        for event in result.get_asset_materialization_events()
        for m in [event.event_specific_data.materialization]
        if m.asset_key and m.asset_key.path == ["pool_publication"]
    ]
    live = live_version()
    if publications:
        print(f"  published pool version {live}: " + ", ".join(str(p) for p in tier_paths().values()))
        stale = publications[-1].metadata.get("stale_tables")
        for table, hold in sorted((stale.value if stale else {}).items()):
            scope = "whole table" if hold["whole"] else "days " + ", ".join(hold["held_days"])
            print(f"    STALE {table} ({scope}, previous content kept): {hold['reason']}")
    else:
        print(f"  pool NOT published in this run; live version stays {live or '(none yet)'}")
    if data_docs_index().exists():
        print(f"  Data Docs: {data_docs_index()}")


def print_run_summary(run_id: str) -> None:
    """Deliveries and rows per feed that the run ingested (raw.ingestion_log)."""
    from citybrain.warehouse import Warehouse

    warehouse = Warehouse.from_settings()
    if not warehouse.path.exists():
        return
    with warehouse.connect(read_only=True) as con:
        rows = con.execute(RUN_SUMMARY_SQL.read_text(encoding="utf-8"), [run_id]).fetchall()
    if not rows:
        print("  (no new deliveries: everything was already loaded)")
        return
    print(f"  {'feed':<24}{'deliveries':>11}{'received':>11}{'loaded':>11}{'quarantined':>13}{'failed':>8}")
    for feed_id, deliveries, received, loaded, quarantined, failed in rows:
        print(f"  {feed_id:<24}{deliveries:>11}{received:>11}{loaded:>11}{quarantined:>13}{failed:>8}")


def print_pool_summary() -> None:
    """The published tiers' tables with row counts and one example query, so a newcomer knows where to
    start. Read from the published tier files (row counts from their ``meta.publication``), never from the
    warehouse; the example runs on the open tier, which holds no personal data."""
    import json

    import duckdb

    from citybrain.publication import tier_paths

    paths = {tier: path for tier, path in tier_paths().items() if path.exists()}
    if not paths:
        return
    open_tables: set[str] = set()
    for tier, path in paths.items():
        with duckdb.connect(str(path), read_only=True) as con:
            (table_rows,) = con.execute("SELECT table_rows FROM meta.publication").fetchone()
        table_rows = json.loads(table_rows)
        print(f"\n  published {tier} tier {path} (schema pool):")
        for table, rows in sorted(table_rows.items()):
            print(f"    {table.removeprefix('pool.'):<32}{rows:>12,} rows")
        if tier == "open":
            open_tables = {t.removeprefix("pool.") for t in table_rows}
    if {"ind_district_monthly", "dim_district"} <= open_tables:
        print('\n  example query (citybrain query --local-operator "...", or --token T within your grants):')
        print("\n".join("    " + line for line in EXAMPLE_QUERY.splitlines()))
        with duckdb.connect(str(paths["open"]), read_only=True) as con:
            print("\n" + "\n".join("    " + line for line in str(con.sql(EXAMPLE_QUERY)).splitlines()))
