"""Jobs. ``city_nightly`` is the main job: everything, for one day (or a range of days).

Every run of these jobs carries the tag ``citybrain/lake`` (job tags reach the runs of schedules,
sensors, the UI, `dagster job launch` and `citybrain run` alike): a shared instance queues runs of the
same lake one at a time and lets other lakes run beside them (orchestration/instance/dagster.postgres.yaml).
"""

from __future__ import annotations

import hashlib
import os

from dagster import AssetSelection, define_asset_job

from assets.ingestion import RAW_PREFIX
from citybrain import settings
from citybrain.vocabulary import LAKE_TAG

LAKE_ID_ENV = "CITYBRAIN_LAKE_ID"


def lake_id() -> str:
    """The lake's name in a shared instance: $CITYBRAIN_LAKE_ID, else the CITYBRAIN_HOME directory's name
    and a short hash of its path (``data-1a2b3c4d``), so two lakes never share one by accident. Set the
    variable when processes on several machines see the lake under different paths."""
    explicit = os.environ.get(LAKE_ID_ENV, "").strip()
    if explicit:
        return explicit
    home = settings.home()
    return f"{home.name}-{hashlib.sha256(str(home).encode()).hexdigest()[:8]}"


# Read when the code location loads (once per process, as the rest of the definitions).
_LAKE_TAGS = {LAKE_TAG: lake_id()}

city_nightly = define_asset_job(
    "city_nightly",
    selection=AssetSelection.all(),
    description="Ingest every feed for the day (and the unpartitioned snapshots), then build the pool.",
    tags=_LAKE_TAGS,
)

raw_ingestion = define_asset_job(
    "raw_ingestion",
    selection=AssetSelection.key_prefixes([RAW_PREFIX]),
    description="Only the ingestion assets: deliveries into the raw layer, nothing downstream.",
    tags=_LAKE_TAGS,
)
