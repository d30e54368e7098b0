"""Enterprises: the truth table, and market regulation's JSON Lines registry delivery (法人库)."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd

from citybrain.ingest import reasons
from demo_city import defects, idnumbers, places, redistricting, vocab
from demo_city.manifest import CONTENT, RAW, Manifest

FEED = "legal_entities"
COLUMNS = [
    "uscc",
    "name",
    "legal_representative",
    "entity_type",
    "registered_capital",
    "established_on",
    "district_code",
    "industry_code",
    "status",
    "address",
    "updated_at",
]
STATUSES = (["存续", "注销", "吊销"], [0.88, 0.08, 0.04])
CAPITAL_STEPS = np.array([3, 5, 10, 20, 30, 50, 100, 200, 300, 500, 1000, 2000, 5000, 10000])


def build_enterprises(
    rng: np.random.Generator, counties: pd.DataFrame, county_weights: np.ndarray, n: int, end_date: date
) -> pd.DataFrame:
    """The true enterprises: identity, location (WGS-84) and a size weight that decides who works where."""
    k = rng.choice(len(counties), n, p=county_weights)
    codes = counties["code"].to_numpy(dtype=object)[k]
    uscc = idnumbers.usccs(rng, codes)
    letters = list(vocab.INDUSTRIES)
    freq = np.array([vocab.INDUSTRIES[x][1] for x in letters])
    ind = rng.choice(len(letters), n, p=freq / freq.sum())
    pick = rng.integers(0, 8, n)
    word = np.array(
        [
            vocab.INDUSTRIES[letters[i]][0][j % len(vocab.INDUSTRIES[letters[i]][0])]
            for i, j in zip(ind, pick, strict=True)
        ],
        dtype=object,
    )
    types = list(vocab.ENTITY_TYPES)
    tw = np.array([vocab.ENTITY_TYPES[t][1] for t in types])
    t = rng.choice(len(types), n, p=tw / tw.sum())
    suffix = np.array([vocab.ENTITY_TYPES[types[i]][0] for i in range(len(types))], dtype=object)[t]
    short = places.place_short(counties).to_numpy(dtype=object)[k]
    name = short + vocab.brands(rng, n) + word + suffix
    age_days = np.minimum(rng.exponential(9 * 365, n), 36 * 365).astype(int)
    established = pd.Timestamp(end_date) - pd.to_timedelta(age_days, unit="D")
    capital = rng.choice(CAPITAL_STEPS, n) * np.where(rng.random(n) < 0.8, 1.0, rng.uniform(0.5, 3, n))
    capital = np.round(capital, 1)
    status = rng.choice(STATUSES[0], n, p=STATUSES[1])
    since = np.minimum(age_days, 3 * 365)
    updated = (
        pd.Timestamp(end_date)
        + pd.Timedelta(hours=18)
        - pd.to_timedelta((rng.random(n) * since * 86400).astype(np.int64), unit="s")
    )
    lng, lat = places.scatter(rng, k, counties, 0.03, core_share=0.7)
    df = pd.DataFrame(
        {
            "uscc": uscc,
            "name": name,
            "legal_representative": vocab.person_names(rng, rng.random(n) < 0.7),
            "entity_type": np.array(types, dtype=object)[t],
            "registered_capital": capital,
            "established_on": established.strftime("%Y-%m-%d"),
            "district_code": codes,
            "industry_code": np.array(letters, dtype=object)[ind],
            "status": status,
            "address": places.street_addresses(rng, k, counties, rooms=False),
            "updated_at": updated.strftime("%Y-%m-%d %H:%M:%S"),
            "county_idx": k,
            "lng": lng,
            "lat": lat,
            # Heavy-tailed firm sizes: a few large employers, many micro firms, dissolved ones employ nobody.
            "size_weight": np.where(status == "存续", rng.pareto(1.1, n) + 0.05, 0.0),
        }
    )
    df["in_entity_registry"] = True
    return df


def capital_text(capital: pd.Series) -> pd.Series:
    """Registered capital as delivered: '500', '1234.5' (万元)."""
    return capital.map(lambda v: f"{v:g}")


def write_legal_entities(
    landing, ents: pd.DataFrame, stale: pd.DataFrame, end_date: date, rate: float, rng, manifest: Manifest
) -> str:
    """One full snapshot: the enterprises the registry knows, with its defects; returns the file name."""
    rel = f"market_regulation/legal_entities_{end_date:%Y%m%d}.jsonl"
    reg = ents[ents["in_entity_registry"]].reset_index(drop=True)
    out = reg[COLUMNS].copy()
    out["registered_capital"] = capital_text(out["registered_capital"])
    n = len(out)
    content = ["invalid_uscc_check_char", "capital_as_text", "retired_district_code"]
    raw = [reasons.INVALID_JSON, reasons.NOT_A_JSON_OBJECT, reasons.MISSING_KEY]
    counts = defects.allocate(n, content + raw, rate)
    wanted = {kind: (counts[kind], None) for kind in content + raw}
    # a stale code only where the record of changes has one for the enterprise's county
    wanted["retired_district_code"] = (
        counts["retired_district_code"] if len(stale) else 0,
        out["district_code"].isin(set(stale["maps_to"])).to_numpy(),
    )
    rows = defects.pick(rng, n, wanted)

    clean_uscc = out["uscc"].copy()
    i = rows["invalid_uscc_check_char"]
    out.loc[i, "uscc"] = [idnumbers.wrong_uscc_check(u, rng) for u in out.loc[i, "uscc"]]
    manifest.add(
        FEED, rel, CONTENT, "invalid_uscc_check_char", i + 1, out.loc[i, "uscc"], "clean=" + clean_uscc[i]
    )
    i = rows["capital_as_text"]
    out.loc[i, "registered_capital"] = out.loc[i, "registered_capital"] + "万元"
    manifest.add(
        FEED, rel, CONTENT, "capital_as_text", i + 1, out.loc[i, "uscc"], out.loc[i, "registered_capital"]
    )
    i = rows["retired_district_code"]
    if len(i):
        current = out.loc[i, "district_code"].to_numpy(dtype=object)
        chosen = stale.iloc[defects.stale_rows_for(rng, current, stale)].set_axis(i)
        manifest.add(
            FEED,
            rel,
            CONTENT,
            "retired_district_code",
            i + 1,
            out.loc[i, "uscc"],
            "current="
            + out.loc[i, "district_code"]
            + " delivered="
            + chosen["code"]
            + " township="
            + chosen["township"],
        )
        out.loc[i, "district_code"] = chosen["code"].to_numpy(dtype=object)
        out.loc[i, "address"] = redistricting.stale_addresses(out.loc[i, "address"], chosen)

    records = out.astype(object).where(out.notna(), None).to_dict("records")
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    for j in rows[reasons.MISSING_KEY]:
        records[j]["uscc"] = None if rng.random() < 0.5 else ""
        lines[j] = json.dumps(records[j], ensure_ascii=False)
    manifest.add(
        FEED,
        rel,
        RAW,
        reasons.MISSING_KEY,
        rows[reasons.MISSING_KEY] + 1,
        "",
        "clean=" + clean_uscc[rows[reasons.MISSING_KEY]],
    )
    for j in rows[reasons.INVALID_JSON]:
        lines[j] = lines[j][: max(1, len(lines[j]) // 2)]  # a line cut off mid-record
    manifest.add(
        FEED,
        rel,
        RAW,
        reasons.INVALID_JSON,
        rows[reasons.INVALID_JSON] + 1,
        clean_uscc[rows[reasons.INVALID_JSON]],
        "truncated line",
    )
    for j in rows[reasons.NOT_A_JSON_OBJECT]:
        lines[j] = json.dumps([records[j]["uscc"], records[j]["name"]], ensure_ascii=False)
    manifest.add(
        FEED,
        rel,
        RAW,
        reasons.NOT_A_JSON_OBJECT,
        rows[reasons.NOT_A_JSON_OBJECT] + 1,
        clean_uscc[rows[reasons.NOT_A_JSON_OBJECT]],
        "a JSON array",
    )

    defects.write_bytes(landing / rel, ("\n".join(lines) + "\n").encode("utf-8"))
    manifest.rows_written[rel] = n
    return rel
