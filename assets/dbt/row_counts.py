"""``dagster/row_count`` on each table's output, counted after dbt has released the warehouse file.

(dagster-dbt's ``fetch_row_counts`` keeps a dbt-adapter connection open in this process, which then
blocks every other DuckDB connection to the warehouse.)
"""

from collections.abc import Iterator, Mapping

from assets.dbt.outputs import unique_id_of
from assets.dbt_project import parsed_manifest
from citybrain.warehouse import Warehouse


def with_row_counts(events: list, warehouse: Warehouse, counted: Mapping[str, int] | None = None) -> Iterator:
    """``events`` with the row count added to each table's output. Views are not counted: that would run
    them. ``counted``: rows per unique id already known (the pool imported from Spark); then only those
    tables get a count."""
    nodes = parsed_manifest()["nodes"]
    tables = {}
    counts = {}
    for i, event in enumerate(events):
        unique_id = unique_id_of(event)
        if unique_id is None:
            continue
        node = nodes.get(unique_id, {})
        if counted is not None:
            if unique_id in counted:
                counts[i] = counted[unique_id]
        elif node.get("relation_name") and node.get("config", {}).get("materialized") != "view":
            tables[i] = node["relation_name"]
    if tables:
        with warehouse.connect(read_only=True) as con:
            for i, table in tables.items():
                counts[i] = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    for i, event in enumerate(events):
        yield (
            event.with_metadata({**event.metadata, "dagster/row_count": counts[i]}) if i in counts else event
        )
