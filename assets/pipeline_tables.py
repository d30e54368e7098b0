"""The tables the pipeline's own steps write beside their assets, declared so the UI says what they are.

``raw.ingestion_log`` and ``raw.quarantine`` (written by every ingestion step) and
``quality.expectation_results`` (written by every quality check step) are dbt sources: the quality scorecards
and the lineage read them. No asset produces them as its output, so without a declaration Dagster shows them
as bare keys with no description, owner or kind. Each becomes an external asset with the description of its
dbt source (one text, in the dbt YAML) in the group of its schema.
"""

from __future__ import annotations

from collections.abc import Iterable

from dagster import AssetKey, AssetSpec

from assets.dbt_project import parsed_manifest


def pipeline_table_specs(defined: Iterable[AssetKey]) -> list[AssetSpec]:
    """An external asset for every dbt source that no asset definition produces (``defined``)."""
    produced = set(defined)
    specs = []
    for source in parsed_manifest()["sources"].values():
        key = AssetKey([source["source_name"], source["name"]])
        if key in produced:
            continue
        specs.append(
            AssetSpec(
                key,
                description=source.get("description") or source.get("source_description") or None,
                group_name="pipeline_records",
                owners=["team:data_engineering"],
                kinds={"duckdb"},
                metadata={"written_by": "the pipeline's own steps (not an asset of its own)"},
            )
        )
    return sorted(specs, key=lambda spec: spec.key.to_user_string())
