"""The daily partitions shared by every day-partitioned feed, from the catalog's ``partitions`` block."""

from __future__ import annotations

from dagster import DailyPartitionsDefinition

from citybrain.catalog import Catalog


def daily_partitions(catalog: Catalog) -> DailyPartitionsDefinition:
    return DailyPartitionsDefinition(
        start_date=catalog.partitions.start, timezone=catalog.partitions.timezone
    )
