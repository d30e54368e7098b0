"""The source catalog as a warehouse table, so dbt models (scorecards, resource catalog) can join to it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from citybrain.catalog import CADENCE_HOURS, Catalog

if TYPE_CHECKING:
    import pandas as pd


def feed_table(catalog: Catalog) -> pd.DataFrame:
    import pandas as pd  # at run time only: definitions load must not import pandas

    rows = []
    for feed in catalog.feeds:
        provider = catalog.providers[feed.provider]
        rows.append(
            {
                "feed_id": feed.id,
                "title_zh": feed.title.zh,
                "title_en": feed.title.en,
                "provider_code": feed.provider,
                "provider_name": provider.name,
                "provider_name_en": provider.en,
                "delivery_kind": feed.delivery.kind,
                "cadence": feed.cadence,
                "cadence_hours": CADENCE_HOURS[feed.cadence],
                "max_age_hours": feed.max_age_hours,
                "partitioning": feed.partitioning,
                "snapshot": feed.snapshot,
                "column_count": len(feed.columns),
                # the operator feeds (catalog operator_feed): the staging models read their operator code here
                "operator_code": feed.operator_feed.operator if feed.operator_feed else None,
                "operator_feed_kind": feed.operator_feed.kind if feed.operator_feed else None,
            }
        )
    return pd.DataFrame(rows)


def vocabulary_table(catalog: Catalog) -> pd.DataFrame:
    """Every feed's declared vocabularies (catalog ``vocabularies``): feed_id, column_name, value, code."""
    import pandas as pd

    rows = [
        {"feed_id": feed.id, "column_name": column, "value": value, "code": code}
        for feed in catalog.feeds
        for column, mapping in feed.vocabularies.items()
        for value, code in mapping.items()
    ]
    return pd.DataFrame(rows, columns=["feed_id", "column_name", "value", "code"])
