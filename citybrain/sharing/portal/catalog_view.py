"""The resource catalog as the portal shows it: the catalog export read as is, filtered, with a freshness.

The portal computes nothing the catalog already has (codes, items, classification, grade, quality score and
its basis, last update, held-back state, lineage to the source feeds): it reads the export's
``resource_catalog.json`` (``citybrain catalog export``), again only when the file changes. Freshness is the
one thing added, because it depends on the time: a resource is *late* when its last update is older than its
update cycle plus grace allows — the rule of ``citybrain status`` and the Dagster freshness check
(``citybrain/quality/freshness.py``, ``citybrain.catalog.max_age_hours``) — *fresh* otherwise, *held back*
when the latest publication kept its previous content (the catalog's ``stale``), and *unknown* without a
time or for irregular resources.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from citybrain.catalog import CADENCE_HOURS, max_age_hours
from citybrain.governance.grades import GRADE_ZH, grade_label
from citybrain.quality.freshness import judge
from citybrain.resource_catalog.build import (
    CADENCE_ORDER,
    CADENCE_ZH,
    CLASSIFICATION_ZH,
    Resource,
    ResourceCatalog,
)
from citybrain.resource_catalog.export import read_json

FRESHNESS = {
    "fresh": ("按期更新", "fresh"),
    "late": ("更新逾期", "late"),
    "held": ("暂缓更新", "held back"),
    "unknown": ("未知", "unknown"),
}
TIERS = {tier: (zh, tier) for tier, zh in CLASSIFICATION_ZH.items()}


class CatalogMissing(FileNotFoundError):
    """No catalog export to show: ``citybrain catalog export`` writes it."""


@dataclass(frozen=True)
class Filters:
    q: str = ""
    department: str = ""
    tier: str = ""
    grade: str = ""
    cycle: str = ""
    freshness: str = ""

    def matches(self, resource: Resource, now: datetime) -> bool:
        if self.department and resource.provider_code != self.department:
            return False
        if self.tier and resource.classification != self.tier:
            return False
        if self.grade and resource.grade != self.grade:
            return False
        if self.cycle and resource.update_cycle_code != self.cycle:
            return False
        if self.freshness and freshness(resource, now) != self.freshness:
            return False
        return not self.q or self.q.lower() in search_text(resource)


def freshness(resource: Resource, now: datetime) -> str:
    if resource.stale:
        return "held"
    if resource.update_cycle_code not in CADENCE_HOURS or not resource.last_updated:
        return "unknown"
    try:
        updated = datetime.fromisoformat(resource.last_updated)
    except ValueError:
        return "unknown"
    # Times without a zone (a bare date, the sharing store's naive UTC clock) are UTC.
    updated, now = (t if t.tzinfo else t.replace(tzinfo=UTC) for t in (updated, now))
    judged = judge(updated.timestamp(), max_age_hours(resource.update_cycle_code), now.timestamp())
    return "late" if judged.overdue else "fresh"


def search_text(resource: Resource) -> str:
    words = [resource.code, resource.name, resource.name_en, resource.table, resource.summary,
             resource.provider, *resource.source_providers]  # fmt: skip
    words += [f"{i.name} {i.name_zh}" for i in resource.items]
    return " ".join(w for w in words if w).lower()


def choices(catalog: ResourceCatalog) -> dict[str, list[tuple[str, str]]]:
    """The values each filter offers, as (value, label), from what the catalog holds."""
    resources = catalog.resources
    cycles = {r.update_cycle_code for r in resources}
    return {
        "department": sorted({(r.provider_code, f"{r.provider}（{r.provider_code}）") for r in resources}),
        "tier": [(t, f"{zh} {en}") for t, (zh, en) in TIERS.items()],
        "grade": [(g, grade_label(g)) for g in GRADE_ZH],
        "cycle": [(c, f"{CADENCE_ZH[c]} {c}") for c in CADENCE_ORDER if c in cycles],
        "freshness": [(f, f"{zh} {en}") for f, (zh, en) in FRESHNESS.items()],
    }


class CatalogSource:
    """The export's JSON, re-read when its modification time changes (a new export swaps the directory)."""

    def __init__(self, path: Path | None = None):
        self._path = path
        self._lock = threading.Lock()
        self._cached: tuple[tuple[str, float], ResourceCatalog] | None = None

    @property
    def path(self) -> Path:
        if self._path is not None:
            return Path(self._path)
        from citybrain.sharing.resources import catalog_json_path

        return catalog_json_path()

    def load(self) -> ResourceCatalog:
        path = self.path
        try:
            stamp = (str(path), path.stat().st_mtime)
        except FileNotFoundError:
            raise CatalogMissing("no resource catalog export yet: run `citybrain catalog export`") from None
        with self._lock:
            if self._cached is None or self._cached[0] != stamp:
                self._cached = (stamp, read_json(path))
            return self._cached[1]

    def find(self, code: str) -> Resource | None:
        return next((r for r in self.load().resources if r.code == code), None)
