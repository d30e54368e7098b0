"""``dagster/column_lineage`` on the pool models' outputs: the raw feed columns each pool column is derived
from (unmasked), read from the compiled SQL the classification check has just stored
(citybrain/lineage/columns.py). The Dagster UI shows it on the asset's columns."""

from collections.abc import Iterator

from dagster import AssetKey

from assets.dbt.classification_check import governance_store_path
from assets.dbt.outputs import built_unique_ids, unique_id_of
from citybrain.catalog import load_catalog


def with_column_lineage(events, manifest: dict) -> Iterator:
    """``events`` with the column lineage added to the outputs of the pool models built."""
    from dagster import TableColumnDep, TableColumnLineage

    from citybrain.lineage.columns import column_origins

    events = list(events)
    origins = column_origins(manifest, load_catalog(), governance_store_path(), only=built_unique_ids(events))
    nodes = manifest.get("nodes", {})
    for event in events:
        node = nodes.get(unique_id_of(event) or "", {})
        columns = origins.get(node.get("alias") or node.get("name") or "")
        if columns:
            lineage = TableColumnLineage(
                deps_by_column={
                    column: [
                        TableColumnDep(asset_key=AssetKey(relation.split(".", 1)), column_name=source)
                        for relation, source in sources
                    ]
                    for column, sources in columns.items()
                    if sources
                }
            )
            event = event.with_metadata({**event.metadata, "dagster/column_lineage": lineage})
        yield event
