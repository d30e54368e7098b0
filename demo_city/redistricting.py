"""Stale division codes for the demo, taken from the official record of changes.

A delivered record that still carries a county code from before a redistricting is a defect the pool must
repair. Which old code a resident of a current county may carry - and, for a split or transfer, which
township (乡镇街道) the record must then name - is read here straight from catalog/division_changes.csv
(the reviewed record of the official approvals), with the csv module: not through the pipeline's
crosswalk builder, so a test compares the pool with the record rather than with the pipeline itself.
Only direct changes are used (old code -> current successor in one row); chains are left to the pool.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from citybrain.settings import REPO_ROOT

CHANGES = REPO_ROOT / "catalog" / "division_changes.csv"
COLUMNS = ["code", "name", "status", "maps_to", "township", "year", "kind"]


def stale_codes(counties: pd.DataFrame, path: Path = CHANGES) -> pd.DataFrame:
    """One row per (old code, current successor, township) the record allows for the configured counties
    (``code``, ``name``); ``maps_to_name`` is the successor's current name (it is in the addresses).

    ``township`` is '' when the record needs none (a rename or merge, or the part of a split the
    approval gives to the stated successor); else the record must name it for the successor to hold.
    """
    current = set(counties["code"])
    rows = []
    with open(path, encoding="utf-8", newline="") as f:
        for r in csv.DictReader(f):
            old, kind, year = r["old_code"], r["kind"], int(r["date"][:4])
            # a transfer, or a split whose main part keeps the code, leaves the old code in use
            status = "current" if kind == "transfer" or r["apportion_to"] == old else "retired"
            if kind in ("rename", "merge") and r["new_codes"] in current:
                rows.append([old, r["old_name"], status, r["new_codes"], "", year, kind])
            elif kind in ("split", "transfer"):
                for part in filter(None, r["townships"].split(";")):
                    target, _, names = part.partition(":")
                    if target in current:
                        rows += [
                            [old, r["old_name"], status, target, n, year, kind] for n in names.split("|")
                        ]
                rest = r["apportion_to"]
                if kind == "split" and rest in current and rest != old:
                    rows.append([old, r["old_name"], status, rest, "", year, kind])
    out = pd.DataFrame(rows, columns=COLUMNS).sort_values(["code", "maps_to", "township"], ignore_index=True)
    out["maps_to_name"] = out["maps_to"].map(dict(zip(counties["code"], counties["name"], strict=True)))
    return out


def stale_addresses(addresses: pd.Series, stale: pd.DataFrame) -> pd.Series:
    """Addresses as the old records wrote them: the old county's name, plus the township when one decides.

    '浙江省杭州市钱塘区文一路12号' -> '浙江省杭州市江干区下沙街道文一路12号'. ``stale`` holds the chosen
    stale_codes row of each address (same length, same order).
    """
    new = [
        str(a).replace(cur, old + town, 1)
        for a, cur, old, town in zip(
            addresses, stale["maps_to_name"], stale["name"], stale["township"], strict=True
        )
    ]
    return pd.Series(new, index=addresses.index, dtype=object)


def codes_without_successor(counties: pd.DataFrame, path: Path = CHANGES) -> pd.DataFrame:
    """Retired codes of the configured cities (same first four digits) for which the record establishes no
    successor (kind 'retired'): a record carrying one belongs to no known district and must be reported,
    not mapped."""
    cities = {c[:4] for c in counties["code"]}
    with open(path, encoding="utf-8", newline="") as f:
        rows = [
            [r["old_code"], r["old_name"]]
            for r in csv.DictReader(f)
            if r["kind"] == "retired" and r["old_code"][:4] in cities
        ]
    return pd.DataFrame(rows, columns=["code", "name"]).sort_values("code", ignore_index=True)
