"""Public security's household registry (户籍人口): one full GB18030 CSV snapshot with its defects."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from citybrain.demo import defects, idnumbers
from citybrain.demo.manifest import CONTENT, RAW, Manifest
from citybrain.ingest import reasons

FEED = "household_registry"
COLUMNS = ["id_number", "name", "sex", "birth_date", "ethnicity", "household_id", "hukou_district", "address", "phone", "registered_on"]  # fmt: skip
CONTENT_KINDS = [
    "legacy_15_digit_id",
    "lowercase_x_check_digit",
    "bad_check_digit",
    "fullwidth_digits",
    "retired_district_code",
    "duplicate_row",
]
RAW_KINDS = [reasons.COLUMN_COUNT_MISMATCH, reasons.UNDECODABLE_BYTES, reasons.MISSING_KEY]


def write_household_registry(
    landing,
    residents: pd.DataFrame,
    retired: pd.DataFrame,
    end_date: date,
    rate: float,
    rng,
    manifest: Manifest,
) -> str:
    rel = f"public_security/household_registry_{end_date:%Y%m%d}.csv"
    base = residents.rename(columns={"home_county": "hukou_district"})[COLUMNS].reset_index(drop=True)
    n = len(base)
    counts = defects.allocate(n, CONTENT_KINDS + RAW_KINDS, rate)

    # Content defects on the clean rows (duplicates are added afterwards, as extra records).
    born_1900s = base["birth_date"].str[:2].eq("19").to_numpy()
    ends_x = base["id_number"].str[-1].eq("X").to_numpy()
    targets = set(retired["maps_to"]) if len(retired) else set()
    wanted = {
        "legacy_15_digit_id": (counts["legacy_15_digit_id"], born_1900s),
        "lowercase_x_check_digit": (counts["lowercase_x_check_digit"], ends_x),
        "retired_district_code": (
            counts["retired_district_code"],
            base["hukou_district"].isin(targets).to_numpy() if targets else None,
        ),
        "bad_check_digit": (counts["bad_check_digit"], None),
        "fullwidth_digits": (counts["fullwidth_digits"], None),
    }
    if not len(retired):
        wanted["retired_district_code"] = (0, None)
    rows = defects.pick(rng, n, wanted)
    out = base.copy()
    clean = base["id_number"]
    notes: dict[str, pd.Series] = {}
    i = rows["legacy_15_digit_id"]
    out.loc[i, "id_number"] = clean[i].map(idnumbers.to_legacy_15)
    i = rows["lowercase_x_check_digit"]
    out.loc[i, "id_number"] = clean[i].str[:-1] + "x"
    i = rows["bad_check_digit"]
    out.loc[i, "id_number"] = [idnumbers.wrong_check_digit(x, rng) for x in clean[i]]
    i = rows["fullwidth_digits"]
    out.loc[i, "id_number"] = clean[i].map(idnumbers.to_fullwidth)
    i = rows["retired_district_code"]
    if len(i):
        old = defects.retired_codes_for(rng, base.loc[i, "hukou_district"].to_numpy(), retired)
        notes["retired_district_code"] = "current=" + base.loc[i, "hukou_district"] + " delivered=" + old
        out.loc[i, "hukou_district"] = old

    # Duplicates: exact copies of some records, slotted in at random places.
    dup_src = (
        np.sort(rng.choice(n, min(counts["duplicate_row"], n), replace=False))
        if counts["duplicate_row"]
        else np.array([], dtype=np.int64)
    )
    position = np.r_[np.arange(n, dtype=float), rng.uniform(0, n, len(dup_src))]
    order = np.argsort(position, kind="stable")
    final = pd.concat([out, out.iloc[dup_src]], ignore_index=True).iloc[order].reset_index(drop=True)
    new_pos = np.empty(len(order), dtype=np.int64)
    new_pos[order] = np.arange(len(order))  # original index (base rows then duplicates) -> final index

    for kind in CONTENT_KINDS[:-1]:
        i = rows[kind]
        detail = notes.get(kind, "clean_id=" + clean[i])
        manifest.add(FEED, rel, CONTENT, kind, new_pos[i] + 1, final.loc[new_pos[i], "id_number"], detail)
    dup_final = new_pos[n:]
    manifest.add(
        FEED,
        rel,
        CONTENT,
        "duplicate_row",
        dup_final + 1,
        final.loc[dup_final, "id_number"],
        [f"copy of row {new_pos[s] + 1}" for s in dup_src],
    )

    # Raw defects on records that carry no other defect (so each record has exactly one).
    m = len(final)
    dirty = np.zeros(m, dtype=bool)
    dirty[new_pos[np.concatenate([rows[k] for k in CONTENT_KINDS[:-1]] + [dup_src])]] = True
    dirty[dup_final] = True
    raw_rows = defects.pick(rng, m, {k: (counts[k], ~dirty) for k in RAW_KINDS})
    keys = final["id_number"].copy()
    i = raw_rows[reasons.MISSING_KEY]
    final.loc[i, "id_number"] = ""
    data = defects.csv_bytes(
        final, encoding="gb18030", raw=raw_rows, rng=rng, split_column="address", undecodable_column="address"
    )
    for kind in RAW_KINDS:
        i = raw_rows[kind]
        key = "" if kind == reasons.MISSING_KEY else keys[i]
        manifest.add(
            FEED, rel, RAW, kind, i + 1, key, "clean_id=" + keys[i] if kind == reasons.MISSING_KEY else ""
        )
    defects.write_bytes(landing / rel, data)
    manifest.rows_written[rel] = m
    return rel
