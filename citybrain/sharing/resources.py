"""What a consumer can apply for: the published pool resources of the resource catalog, by resource code.

The catalog export (``citybrain catalog export``, ``$CITYBRAIN_CATALOG_EXPORT_DIR/current/
resource_catalog.json``) names each resource's code, its pool table, tier, providing department and data
items (columns). Only pool resources of a published tier can be shared through the service: feeds stay in
the warehouse, restricted data is never published.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from citybrain.pool_layout import PUBLISHED_TIERS
from citybrain.resource_catalog.export import CURRENT, JSON_FILE, export_dir, read_json


class UnknownResource(LookupError):
    """No shareable resource with that code."""


@dataclass(frozen=True)
class ShareableResource:
    code: str
    table: str  # pool.<table>
    tier: str
    provider_code: str  # the providing department's code: its approvers decide
    columns: tuple[str, ...]
    name: str = ""


def catalog_json_path() -> Path:
    return export_dir() / CURRENT / JSON_FILE


def load_resources(path: Path | None = None) -> dict[str, ShareableResource]:
    path = Path(path) if path else catalog_json_path()
    if not path.exists():
        raise UnknownResource(f"no resource catalog at {path}: run `citybrain catalog export` first")
    catalog = read_json(path)
    return {
        r.code: ShareableResource(
            code=r.code,
            table=r.table,
            tier=r.classification,
            provider_code=r.provider_code,
            columns=tuple(item.name for item in r.items),
            name=r.name,
        )
        for r in catalog.resources
        if r.kind == "pool" and r.classification in PUBLISHED_TIERS
    }


def find_resource(code: str, resources: dict[str, ShareableResource] | None = None) -> ShareableResource:
    resources = load_resources() if resources is None else resources
    try:
        return resources[code]
    except KeyError:
        raise UnknownResource(
            f"no shareable resource {code!r} (published pool resources of the catalog only)"
        ) from None
