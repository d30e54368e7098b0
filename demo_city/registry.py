"""Public security's household registry (户籍人口): one full GB18030 CSV snapshot with its defects."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from citybrain.ingest import reasons
from demo_city import defects, idnumbers, redistricting
from demo_city.manifest import CONTENT, RAW, Manifest

FEED = "household_registry"
COLUMNS = ["id_number", "name", "sex", "birth_date", "ethnicity", "household_id", "hukou_district", "address", "phone", "registered_on"]  # fmt: skip
CONTENT_KINDS = [
    "legacy_15_digit_id",
    "lowercase_x_check_digit",
    "bad_check_digit",
    "fullwidth_digits",
    "retired_district_code",
    "retired_code_without_successor",
    "duplicate_row",
]
RAW_KINDS = [reasons.COLUMN_COUNT_MISMATCH, reasons.UNDECODABLE_BYTES, reasons.MISSING_KEY]


SOURCE_COLUMNS = {"hukou_district": "home_county"}  # delivered column -> residents column


def write_household_registry(
    landing,
    residents: pd.DataFrame,
    stale: pd.DataFrame,
    orphans: pd.DataFrame,
    end_date: date,
    rate: float,
    rng,
    manifest: Manifest,
    chunk_rows: int | None = None,
) -> str:
    """The snapshot file, written ``chunk_rows`` records at a time.

    The delivered records are never materialised as a frame: a record is a resident (or a copy of
    one, for duplicates) plus the few values a defect changed, kept as sparse overrides.
    """
    rel = f"public_security/household_registry_{end_date:%Y%m%d}.csv"
    n = len(residents)
    counts = defects.allocate(n, CONTENT_KINDS + RAW_KINDS, rate)

    # Content defects on the clean rows (duplicates are added afterwards, as extra records).
    born_1900s = _flag(residents["birth_date"], lambda t: t.str[:2].eq("19"))
    ends_x = residents["id_number"].str[-1].eq("X").to_numpy()
    targets = set(stale["maps_to"]) if len(stale) else set()
    wanted = {
        "legacy_15_digit_id": (counts["legacy_15_digit_id"], born_1900s),
        "lowercase_x_check_digit": (counts["lowercase_x_check_digit"], ends_x),
        "retired_district_code": (
            counts["retired_district_code"],
            residents["home_county"].isin(targets).to_numpy() if targets else None,
        ),
        "retired_code_without_successor": (
            counts["retired_code_without_successor"] if len(orphans) else 0,
            None,
        ),
        "bad_check_digit": (counts["bad_check_digit"], None),
        "fullwidth_digits": (counts["fullwidth_digits"], None),
    }
    if not len(stale):
        wanted["retired_district_code"] = (0, None)
    rows = defects.pick(rng, n, wanted)
    del born_1900s, ends_x
    clean = residents["id_number"]

    def clean_ids(i: np.ndarray) -> pd.Series:
        return pd.Series(clean.iloc[i].to_numpy(dtype=object), index=i, dtype=object)

    changed: dict[str, list[pd.Series]] = {"id_number": [], "hukou_district": [], "address": []}
    notes: dict[str, np.ndarray] = {}
    i = rows["legacy_15_digit_id"]
    changed["id_number"].append(clean_ids(i).map(idnumbers.to_legacy_15))
    i = rows["lowercase_x_check_digit"]
    changed["id_number"].append(clean_ids(i).str[:-1] + "x")
    i = rows["bad_check_digit"]
    changed["id_number"].append(
        pd.Series([idnumbers.wrong_check_digit(x, rng) for x in clean_ids(i)], index=i, dtype=object)
    )
    i = rows["fullwidth_digits"]
    changed["id_number"].append(clean_ids(i).map(idnumbers.to_fullwidth))
    i = rows["retired_district_code"]
    if len(i):
        # A code from before a redistricting, from the official record (redistricting.stale_codes); for a
        # split or transfer the address names the township that decides, as the old record would.
        current = residents["home_county"].iloc[i].to_numpy(dtype=object)
        chosen = stale.iloc[defects.stale_rows_for(rng, current, stale)].reset_index(drop=True)
        old = chosen["code"].to_numpy(dtype=object)
        notes["retired_district_code"] = (
            "current="
            + current
            + " delivered="
            + old
            + " township="
            + chosen["township"].to_numpy(dtype=object)
        )
        changed["hukou_district"].append(pd.Series(old, index=i, dtype=object))
        addresses = pd.Series(residents["address"].iloc[i].to_numpy(dtype=object), index=i, dtype=object)
        changed["address"].append(redistricting.stale_addresses(addresses, chosen.set_axis(i)))
    i = rows["retired_code_without_successor"]
    if len(i):
        # A retired code of the city the record of changes gives no successor for: no district to expect.
        current = residents["home_county"].iloc[i].to_numpy(dtype=object)
        old = orphans["code"].to_numpy(dtype=object)[rng.integers(0, len(orphans), len(i))]
        notes["retired_code_without_successor"] = "current=" + current + " delivered=" + old
        changed["hukou_district"].append(pd.Series(old, index=i, dtype=object))
    overrides = {c: _overrides(parts) for c, parts in changed.items()}

    def delivered_ids(source: np.ndarray) -> np.ndarray:
        """ID numbers as delivered (defects applied) of the given residents."""
        ids = clean.iloc[source].to_numpy(dtype=object)
        _apply(ids, source, overrides["id_number"])
        return ids

    # Duplicates: exact copies of some records, slotted in at random places.
    dup_src = (
        np.sort(rng.choice(n, min(counts["duplicate_row"], n), replace=False))
        if counts["duplicate_row"]
        else np.array([], dtype=np.int64)
    )
    position = np.r_[np.arange(n, dtype=float), rng.uniform(0, n, len(dup_src))]
    order = np.argsort(position, kind="stable")
    del position
    source = np.r_[np.arange(n), dup_src][order]  # delivered record -> resident
    new_pos = np.empty(len(order), dtype=np.int64)
    new_pos[order] = np.arange(len(order))  # original index (base rows then duplicates) -> final index
    del order

    for kind in CONTENT_KINDS[:-1]:
        i = rows[kind]
        detail = notes[kind] if kind in notes else "clean_id=" + clean.iloc[i].to_numpy(dtype=object)
        manifest.add(FEED, rel, CONTENT, kind, new_pos[i] + 1, delivered_ids(i), detail)
    dup_final = new_pos[n:]
    manifest.add(
        FEED,
        rel,
        CONTENT,
        "duplicate_row",
        dup_final + 1,
        delivered_ids(source[dup_final]),
        [f"copy of row {new_pos[s] + 1}" for s in dup_src],
    )

    # Raw defects on records that carry no other defect (so each record has exactly one).
    m = len(source)
    dirty = np.zeros(m, dtype=bool)
    dirty[new_pos[np.concatenate([rows[k] for k in CONTENT_KINDS[:-1]] + [dup_src])]] = True
    dirty[dup_final] = True
    raw_rows = defects.pick(rng, m, {k: (counts[k], ~dirty) for k in RAW_KINDS})
    del dirty, new_pos
    blank = np.sort(raw_rows[reasons.MISSING_KEY])

    def records(positions: np.ndarray) -> pd.DataFrame:
        """Delivered records at these positions: residents' values, defects applied, missing keys blank."""
        src = source[positions]
        out = {}
        for col in COLUMNS:
            values = residents[SOURCE_COLUMNS.get(col, col)].iloc[src]
            out[col] = values.to_numpy(dtype=object)
            if col in overrides:
                _apply(out[col], src, overrides[col])
        out["id_number"][np.isin(positions, blank)] = ""
        return pd.DataFrame(out)

    path = landing / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    defects.write_csv(
        path,
        COLUMNS,
        m,
        records,
        encoding="gb18030",
        raw=raw_rows,
        rng=rng,
        split_column="address",
        undecodable_column="address",
        chunk_rows=chunk_rows,
    )
    for kind in RAW_KINDS:
        i = raw_rows[kind]
        keys = delivered_ids(source[i])
        key = "" if kind == reasons.MISSING_KEY else keys
        manifest.add(
            FEED, rel, RAW, kind, i + 1, key, "clean_id=" + keys if kind == reasons.MISSING_KEY else ""
        )
    manifest.rows_written[rel] = m
    return rel


def _flag(values: pd.Series, test) -> np.ndarray:
    """``test`` (text Series -> booleans) per row; on a categorical, run once per category."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        per_category = np.append(test(pd.Series(values.cat.categories, dtype="str")).to_numpy(bool), False)
        return per_category[values.cat.codes.to_numpy()]
    return test(values).to_numpy(bool)


def _overrides(parts: list[pd.Series]) -> pd.Series:
    """Changed values by resident index (sorted), from per-defect Series (disjoint indexes)."""
    if not parts:
        return pd.Series([], index=np.array([], dtype=np.int64), dtype=object)
    return pd.concat(parts).sort_index()


def _apply(values: np.ndarray, source: np.ndarray, overrides: pd.Series) -> None:
    """Replace, in place, the values of residents that have an override."""
    if not len(overrides):
        return
    hit = np.isin(source, overrides.index.to_numpy())
    if hit.any():
        values[hit] = overrides.loc[source[hit]].to_numpy()
