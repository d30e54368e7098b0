"""Jobs. ``city_nightly`` is the main job: everything, for one day (or a range of days)."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

from assets.ingestion import RAW_PREFIX

city_nightly = define_asset_job(
    "city_nightly",
    selection=AssetSelection.all(),
    description="Ingest every feed for the day (and the unpartitioned snapshots), then build the pool.",
)

raw_ingestion = define_asset_job(
    "raw_ingestion",
    selection=AssetSelection.key_prefixes([RAW_PREFIX]),
    description="Only the ingestion assets: deliveries into the raw layer, nothing downstream.",
)
