"""Addresses and coordinates around county centroids: shared by residents, enterprises and facilities."""

from __future__ import annotations

import numpy as np
import pandas as pd

from citybrain.demo import vocab

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
    n = len(county_idx)
    prefix = address_prefix(counties).to_numpy(dtype=object)
    pools = [vocab.streets(rng, 60) for _ in range(len(counties))]
    street = np.empty(n, dtype=object)
    for k, pool in enumerate(pools):
        mask = county_idx == k
        street[mask] = pool[rng.integers(0, len(pool), int(mask.sum()))]
    number = rng.integers(1, 900, n).astype(str)
    out = prefix[county_idx] + street + number + "号"
    if rooms:
        bld = rng.integers(1, 40, n).astype(str)
        unit = rng.integers(1, 6, n).astype(str)
        room = (rng.integers(1, 30, n) * 100 + rng.integers(1, 5, n)).astype(str)
        flat = rng.random(n) < 0.8
        out = np.where(flat, out + bld + "幢" + unit + "单元" + room + "室", out)
    return out


def scatter(
    rng: np.random.Generator,
    county_idx: np.ndarray,
    counties: pd.DataFrame,
    sigma: np.ndarray | float,
    core_share: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """WGS-84 points scattered (gaussian, ``sigma`` degrees) around each entry's county centroid."""
    n = len(county_idx)
    lng0 = counties["lng"].to_numpy()[county_idx]
    lat0 = counties["lat"].to_numpy()[county_idx]
    s = np.full(n, float(sigma)) if np.ndim(sigma) == 0 else np.asarray(sigma, dtype=float)[county_idx]
    if core_share:  # a dense core: most points sit within a third of the county's spread
        s = np.where(rng.random(n) < core_share, s * 0.35, s)
    lng = lng0 + rng.normal(0.0, 1.0, n) * s * 1.15  # a degree of longitude is shorter at 30°N
    lat = lat0 + rng.normal(0.0, 1.0, n) * s
    return np.round(lng, 6), np.round(lat, 6)
