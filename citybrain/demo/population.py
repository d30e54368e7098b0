"""The demo city's residents: one truth table every department and operator feed is cut from.

Households share a county, a home location and an address; ages follow a Chinese-shaped pyramid;
IDs are valid GB 11643 numbers; each person with a phone has one operator (by the district's market
share, the number prefix matching it); working-age people are employed at an enterprise, mostly in
their own county, which fixes where they are during the day. All vectorised: no per-person Python.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from citybrain.demo import idnumbers, places, vocab

# Age pyramid anchors (age, relative cohort size): small recent cohorts, the 1960s and 1985-90 booms.
PYRAMID = [(0, 0.75), (5, 0.95), (10, 1.05), (15, 1.0), (20, 0.95), (25, 1.0), (30, 1.3), (35, 1.4), (40, 1.2),
           (45, 1.15), (50, 1.45), (55, 1.5), (60, 1.25), (65, 1.1), (70, 0.9), (75, 0.6), (80, 0.4), (85, 0.2),
           (90, 0.08), (95, 0.02)]  # fmt: skip
MAX_AGE = 95
HOUSEHOLD_SIZES = ([1, 2, 3, 4, 5, 6], [0.25, 0.30, 0.22, 0.13, 0.07, 0.03])
OPERATORS = ["CMCC", "CUCC", "CTCC"]
# Number segments per operator, from faker's zh_CN phone provider list, split by who owns them.
PHONE_PREFIXES = {
    "CMCC": [134, 135, 136, 137, 138, 139, 147, 150, 151, 152, 157, 158, 159, 182, 187, 188],
    "CUCC": [130, 131, 132, 145, 155, 156, 185, 186],
    "CTCC": [133, 153, 180, 181, 189],
}
BORN_HERE_SHARE = 0.82  # IDs issued in the home county; the rest were first registered elsewhere
SAME_COUNTY_WORK = 0.72
EMPLOYMENT_RATE = 0.65  # among 18-60 year-olds
HOME_SIGMA = (0.03, 0.05)  # degrees: spread of homes around a county centroid


def age_weights() -> np.ndarray:
    ages, weights = zip(*PYRAMID, strict=True)
    return np.interp(np.arange(MAX_AGE + 1), ages, weights)


def _households(rng: np.random.Generator, n: int, county_weights: np.ndarray) -> pd.DataFrame:
    sizes = rng.choice(HOUSEHOLD_SIZES[0], n, p=HOUSEHOLD_SIZES[1])
    cut = int(np.searchsorted(np.cumsum(sizes), n)) + 1
    sizes = sizes[:cut]
    sizes[-1] -= int(sizes.sum()) - n
    county = rng.choice(len(county_weights), len(sizes), p=county_weights)
    order = np.argsort(county, kind="stable")
    return pd.DataFrame({"size": sizes[order], "county_idx": county[order]})


def build_residents(
    rng: np.random.Generator,
    counties: pd.DataFrame,
    county_weights: np.ndarray,
    n: int,
    end_date: date,
    shares: pd.DataFrame,
    enterprises: pd.DataFrame,
    origin_codes: list[str],
) -> pd.DataFrame:
    """``n`` residents with identities, homes, phones, operators and employers (truth, WGS-84)."""
    hh = _households(rng, n, county_weights)
    h = len(hh)
    codes = counties["code"].to_numpy(dtype=object)
    hh["household_id"] = codes[hh["county_idx"]] + pd.Series(
        hh.groupby("county_idx").cumcount().to_numpy() + 1
    ).map("{:08d}".format).to_numpy(dtype=object)
    sigma = rng.uniform(*HOME_SIGMA, len(counties))
    hh["lng"], hh["lat"] = places.scatter(rng, hh["county_idx"].to_numpy(), counties, sigma, core_share=0.65)
    hh["address"] = places.street_addresses(rng, hh["county_idx"].to_numpy(), counties, rooms=True)
    pool, p = vocab.surnames()
    hh["surname"] = pool[rng.choice(len(pool), h, p=p)]

    member = np.repeat(np.arange(h), hh["size"].to_numpy())
    first = np.r_[True, member[1:] != member[:-1]]
    people = hh.iloc[member].reset_index(drop=True)
    k = people["county_idx"].to_numpy()

    # Ages: household heads are adults; everyone else follows the pyramid.
    w = age_weights()
    adult = w.copy()
    adult[:20] = 0
    age = np.where(
        first, rng.choice(MAX_AGE + 1, n, p=adult / adult.sum()), rng.choice(MAX_AGE + 1, n, p=w / w.sum())
    )
    end = pd.Timestamp(end_date)
    days_back = (age * 365.2425 + rng.random(n) * 364).astype(np.int64)
    birth = end - pd.to_timedelta(days_back, unit="D")
    male = rng.random(n) < 0.512
    keep_surname = rng.random(n) < 0.75
    surname = np.where(
        keep_surname, people["surname"].to_numpy(dtype=object), pool[rng.choice(len(pool), n, p=p)]
    )
    name = vocab.person_names(rng, male, surname)

    # ID numbers: address code of first registration (valid in the birth year), birth date, order, check.
    wanted = np.where(
        rng.random(n) < BORN_HERE_SHARE,
        codes[k],
        np.array(origin_codes, dtype=object)[rng.integers(0, len(origin_codes), n)],
    )
    id_address = idnumbers.id_address_codes(wanted, birth.year.to_numpy())
    ymd = birth.strftime("%Y%m%d").to_numpy(dtype=object)
    seq = idnumbers.unique_sequences(rng, id_address, ymd, male)
    ids = idnumbers.resident_ids(id_address, ymd, seq)

    # Operator by the home district's market share; a phone for nearly everyone over ten.
    share = (
        shares.pivot(index="district_code", columns="operator", values="share")
        .loc[codes, OPERATORS]
        .to_numpy()
    )
    cum = np.cumsum(share, axis=1)[k]
    op_idx = (rng.random(n)[:, None] > cum[:, :-1]).sum(axis=1)
    operator = np.array(OPERATORS, dtype=object)[op_idx]
    has_phone = (age >= 10) & (rng.random(n) < np.where(age >= 80, 0.7, 0.97))
    phone = _phones(rng, op_idx)

    ethnic, ew = vocab.ethnic_groups()
    ethnicity = ethnic[rng.choice(len(ethnic), n, p=ew)]

    # Registration: at birth for most, else on moving in as an adult.
    moved = rng.random(n) < 0.25
    move_days = (rng.random(n) * np.maximum(age - 18, 0) * 365.25).astype(np.int64)
    registered = np.where(
        moved & (age >= 19),
        end - pd.to_timedelta(move_days, unit="D"),
        birth + pd.to_timedelta(rng.integers(0, 60, n), unit="D"),
    )
    registered = np.minimum(pd.DatetimeIndex(registered), end)

    employed = (age >= 18) & (age <= 60) & (rng.random(n) < EMPLOYMENT_RATE)
    employer = _employers(rng, k, employed, enterprises, len(counties))
    ent = enterprises.iloc[np.where(employer >= 0, employer, 0)]
    work_lng = np.where(employed, ent["lng"].to_numpy() + rng.normal(0, 0.002, n), people["lng"].to_numpy())
    work_lat = np.where(employed, ent["lat"].to_numpy() + rng.normal(0, 0.002, n), people["lat"].to_numpy())
    work_k = np.where(employed, ent["county_idx"].to_numpy(), k)

    return pd.DataFrame(
        {
            "id_number": ids,
            "id_address_code": id_address,
            "name": name,
            "sex": np.where(male, "男", "女"),
            "birth_date": birth.strftime("%Y-%m-%d").to_numpy(dtype=object),
            "age": age,
            "ethnicity": ethnicity,
            "household_id": people["household_id"].to_numpy(dtype=object),
            "home_county": codes[k],
            "county_idx": k,
            "address": people["address"].to_numpy(dtype=object),
            "registered_on": pd.DatetimeIndex(registered).strftime("%Y-%m-%d").to_numpy(dtype=object),
            "phone": phone,
            "operator": operator,
            "has_phone": has_phone,
            "home_lng": people["lng"].to_numpy(),
            "home_lat": people["lat"].to_numpy(),
            "employed": employed,
            "employer_uscc": np.where(employed, ent["uscc"].to_numpy(dtype=object), None),
            "work_county": codes[work_k],
            "work_county_idx": work_k,
            "work_lng": np.round(work_lng, 6),
            "work_lat": np.round(work_lat, 6),
        }
    )


def _phones(rng: np.random.Generator, op_idx: np.ndarray) -> np.ndarray:
    """Unique 11-digit mobile numbers in the segments of each person's operator."""
    n = len(op_idx)
    out = np.empty(n, dtype=np.int64)
    for o, name in enumerate(OPERATORS):
        mask = op_idx == o
        prefixes = np.array(PHONE_PREFIXES[name], dtype=np.int64)
        m = int(mask.sum())
        slots = rng.choice(len(prefixes) * 10**8, m, replace=False)
        out[mask] = prefixes[slots // 10**8] * 10**8 + slots % 10**8
    return out.astype(str).astype(object)


def _employers(
    rng: np.random.Generator,
    home_k: np.ndarray,
    employed: np.ndarray,
    enterprises: pd.DataFrame,
    n_counties: int,
) -> np.ndarray:
    """Index into ``enterprises`` for each employed person (-1 otherwise), by firm size in the work county."""
    n = len(home_k)
    ent_k = enterprises["county_idx"].to_numpy()
    weight = enterprises["size_weight"].to_numpy()
    jobs = np.bincount(ent_k, weights=weight, minlength=n_counties)
    work_k = home_k.copy()
    away = employed & (rng.random(n) >= SAME_COUNTY_WORK) & (n_counties > 1)
    if away.any():
        # Elsewhere: another county, in proportion to its jobs.
        p = np.tile(jobs, (n_counties, 1))
        np.fill_diagonal(p, 0)
        p = p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12)
        cum = np.cumsum(p, axis=1)[home_k[away]]
        work_k[away] = np.minimum((rng.random(int(away.sum()))[:, None] > cum).sum(axis=1), n_counties - 1)
    out = np.full(n, -1, dtype=np.int64)
    for c in range(n_counties):
        firms = np.flatnonzero((ent_k == c) & (weight > 0))
        mask = employed & (work_k == c)
        if not mask.any():
            continue
        if len(firms) == 0:  # a county without a live firm: work in the largest firm anywhere
            firms = np.array([int(np.argmax(weight))])
        p = weight[firms] / weight[firms].sum()
        out[mask] = firms[rng.choice(len(firms), int(mask.sum()), p=p)]
    return out
