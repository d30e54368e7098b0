"""The resource catalog as the portal shows it: the catalog export read as is, filtered, with a freshness.

The portal computes nothing the catalog already has (codes, items, classification, grade, quality score and
its basis, last update, held-back state, lineage to the source feeds): it reads the export's
``resource_catalog.json`` (``citybrain catalog export``), again only when the file changes. Freshness is the
one thing added, because it depends on today: a resource is *fresh* when its last update is no older than
its update cycle allows, *late* when it is, *held back* when the latest publication kept its previous
content (the catalog's ``stale``), and *unknown* without a date or for irregular resources.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from citybrain.governance.grades import GRADE_ZH, grade_label
from citybrain.resource_catalog.build import (
    CADENCE_ORDER,
    CADENCE_ZH,
    CLASSIFICATION_ZH,
    Resource,
    ResourceCatalog,
)
from citybrain.resource_catalog.export import read_json

# Days a resource of each update cycle may go without an update before it is late (a day of slack for
# the nightly run that publishes it).
ALLOWED_AGE_DAYS = {"hourly": 1, "daily": 2, "weekly": 8, "monthly": 32, "termly": 200, "yearly": 367}
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

    def matches(self, resource: Resource, today: date) -> bool:
        if self.department and resource.provider_code != self.department:
            return False
        if self.tier and resource.classification != self.tier:
            return False
        if self.grade and resource.grade != self.grade:
            return False
        if self.cycle and resource.update_cycle_code != self.cycle:
            return False
        if self.freshness and freshness(resource, today) != self.freshness:
            return False
        return not self.q or self.q.lower() in search_text(resource)


def freshness(resource: Resource, today: date) -> str:
    if resource.stale:
        return "held"
    allowed = ALLOWED_AGE_DAYS.get(resource.update_cycle_code)
    if allowed is None or not resource.last_updated:
        return "unknown"
    try:
        updated = date.fromisoformat(resource.last_updated[:10])
    except ValueError:
        return "unknown"
    return "fresh" if (today - updated).days <= allowed else "late"


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
