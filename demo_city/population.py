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
import pyarrow as pa
import pyarrow.compute as pc

from demo_city import idnumbers, places, vocab

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
CENSUS_DATE = date(2026, 1, 1)
"""The day the residents' ages and registrations are counted back from (or the end date, if earlier).
The city is generated again for every night delivered, and a resident's ID number holds their birth date:
counted back from each night's end date, every ID, and every registration date, moved by a day each night,
and a later night's registry held a million new people and lost a million (the registry snapshot closed
and opened every row). A registry delivered night after night names the same people the same way."""


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
    """``n`` residents with identities, homes, phones, operators and employers (truth, WGS-84).

    The frame is compact so that ten million residents fit in a few GB: values that repeat are
    categoricals (districts, dates, sex, operator, employer, household and its address), small
    integers are int8/int16, text is Arrow and is composed in Arrow or numpy, never one Python
    string per person. ``truth_frame`` turns any slice back into the plain dtypes of the ground truth.
    The random draws are the same, in the same order, as when everything was object arrays.
    """
    hh = _households(rng, n, county_weights)
    h = len(hh)
    codes = counties["code"].to_numpy(dtype=object)
    hk = hh["county_idx"].to_numpy()
    household_ids = _household_ids(codes, hk)
    sigma = rng.uniform(*HOME_SIGMA, len(counties))
    hh_lng, hh_lat = places.scatter(rng, hk, counties, sigma, core_share=0.65)
    hh_address = places.street_addresses_arrow(rng, hk, counties, rooms=True)
    pool, p = vocab.surnames()
    hh_surname = rng.choice(len(pool), h, p=p)

    member = np.repeat(np.arange(h), hh["size"].to_numpy())
    first = np.r_[True, member[1:] != member[:-1]]
    k = hk[member]
    del hh

    # Ages: household heads are adults; everyone else follows the pyramid.
    w = age_weights()
    adult = w.copy()
    adult[:20] = 0
    age = np.where(
        first, rng.choice(MAX_AGE + 1, n, p=adult / adult.sum()), rng.choice(MAX_AGE + 1, n, p=w / w.sum())
    )
    del first
    days_back = (age * 365.2425 + rng.random(n) * 364).astype(np.int64)
    as_of = population_date(end_date)
    birth_date, birth = _dates(as_of, days_back)
    male = rng.random(n) < 0.512
    keep_surname = rng.random(n) < 0.75
    surname = np.where(keep_surname, hh_surname[member], rng.choice(len(pool), n, p=p))
    del keep_surname, hh_surname
    name = pc.binary_join_element_wise(
        pa.array(pool, pa.string()).take(surname), vocab.given_names_arrow(rng, male), ""
    )
    del surname

    # ID numbers: address code of first registration (valid in the birth year), birth date, order, check.
    code_ints = np.array([int(c) for c in codes], dtype=np.int64)
    wanted = np.where(
        rng.random(n) < BORN_HERE_SHARE,
        code_ints[k],
        np.array([int(c) for c in origin_codes], dtype=np.int64)[rng.integers(0, len(origin_codes), n)],
    )
    id_address = idnumbers.id_address_code_ints(wanted, birth.year.to_numpy()[birth_date.codes])
    del wanted
    ymd = (birth.year.to_numpy() * 10000 + birth.month.to_numpy() * 100 + birth.day.to_numpy())[
        birth_date.codes
    ]
    seq = idnumbers.unique_sequences(rng, id_address, ymd, male)
    ids = idnumbers.resident_ids(id_address, ymd, seq)
    del ymd, seq

    # Operator by the home district's market share; a phone for nearly everyone over ten.
    share = (
        shares.pivot(index="district_code", columns="operator", values="share")
        .loc[codes, OPERATORS]
        .to_numpy()
    )
    cum = np.cumsum(share, axis=1)
    draw = rng.random(n)
    op_idx = sum((draw > cum[:, j][k]).astype(np.int8) for j in range(len(OPERATORS) - 1))
    del draw
    has_phone = (age >= 10) & (rng.random(n) < np.where(age >= 80, 0.7, 0.97))
    phone = pc.cast(pa.array(_phones(rng, op_idx)), pa.string())

    ethnic, ew = vocab.ethnic_groups()
    ethnicity = _categorical(rng.choice(len(ethnic), n, p=ew), ethnic)

    # Registration: at birth for most, else on moving in as an adult (days before ``as_of``).
    moved = rng.random(n) < 0.25
    move_days = (rng.random(n) * np.maximum(age - 18, 0) * 365.25).astype(np.int64)
    registered_back = np.where(moved & (age >= 19), move_days, days_back - rng.integers(0, 60, n))
    registered_on, _ = _dates(as_of, np.maximum(registered_back, 0))
    del moved, move_days, registered_back, days_back

    employed = (age >= 18) & (age <= 60) & (rng.random(n) < EMPLOYMENT_RATE)
    employer = _employers(rng, k, employed, enterprises, len(counties))
    at = np.where(employer >= 0, employer, 0)
    home_lng, home_lat = hh_lng[member], hh_lat[member]
    work_lng = np.where(employed, enterprises["lng"].to_numpy()[at] + rng.normal(0, 0.002, n), home_lng)
    work_lat = np.where(employed, enterprises["lat"].to_numpy()[at] + rng.normal(0, 0.002, n), home_lat)
    work_k = np.where(employed, enterprises["county_idx"].to_numpy()[at], k)
    del at
    addresses = pc.dictionary_encode(hh_address)  # households sharing an address share one entry
    del hh_address
    county_codes = pd.Index(codes, dtype="str")

    people = pd.DataFrame(
        {
            "id_number": pd.array(ids, dtype="str"),
            "id_address_code": _codes_column(id_address),
            "name": pd.array(name, dtype="str"),
            "sex": _categorical(np.where(male, 0, 1), ["男", "女"]),
            "birth_date": birth_date,
            "age": age.astype(np.int8),
            "ethnicity": ethnicity,
            "household_id": _categorical(member, household_ids),
            "home_county": _categorical(k, county_codes),
            "county_idx": k.astype(np.int16),
            "address": _categorical(
                addresses.indices.to_numpy(zero_copy_only=False)[member], addresses.dictionary
            ),
            "registered_on": registered_on,
            "phone": pd.array(phone, dtype="str"),
            "operator": _categorical(op_idx, OPERATORS),
            "has_phone": has_phone,
            "home_lng": home_lng,
            "home_lat": home_lat,
            "employed": employed,
            "employer_uscc": _categorical(np.where(employed, employer, -1), enterprises["uscc"]),
            "work_county": _categorical(work_k, county_codes),
            "work_county_idx": work_k.astype(np.int16),
            "work_lng": np.round(work_lng, 6),
            "work_lat": np.round(work_lat, 6),
        }
    )
    _drop_category_lookups(people)
    return people


def _categorical(codes: np.ndarray, categories) -> pd.Categorical:
    """A categorical of text categories, without keeping the lookup its uniqueness check built."""
    values = pd.Categorical.from_codes(codes, categories=pd.Index(pd.array(categories, dtype="str")))
    _forget_lookup(values.categories)
    return values


def _forget_lookup(index: pd.Index) -> None:
    cache = getattr(index, "_cache", None)  # pandas' per-Index cache of derived structures
    if isinstance(cache, dict):
        cache.clear()


def _drop_category_lookups(frame: pd.DataFrame) -> None:
    """Forget the hash tables pandas built over each categorical's categories.

    Checking that categories are unique builds (and caches on the Index) a lookup of Python strings:
    for millions of households and addresses that is ~90 bytes per resident, more than the column
    itself. Nothing here looks values up by category, and pandas rebuilds the lookup if it ever does.
    """
    for _, values in frame.items():
        if isinstance(values.dtype, pd.CategoricalDtype):
            _forget_lookup(values.cat.categories)


def truth_frame(residents: pd.DataFrame) -> pd.DataFrame:
    """Residents (or a slice) in the ground truth's plain dtypes: text as ``str``, integers as int64."""
    out = {}
    for col, values in residents.items():
        if isinstance(values.dtype, pd.CategoricalDtype):
            values = values.astype("str")
        elif values.dtype.kind == "i":
            values = values.astype(np.int64)
        out[col] = values
    return pd.DataFrame(out)


def _household_ids(codes: np.ndarray, county_idx: np.ndarray) -> pa.Array:
    """'<county code><8-digit serial within the county>' per household, built in Arrow."""
    serial = pd.Series(county_idx).groupby(county_idx).cumcount().to_numpy() + 1
    text = pc.utf8_lpad(pc.cast(pa.array(serial), pa.string()), 8, "0")
    return pc.binary_join_element_wise(pa.array(codes, pa.string()).take(county_idx), text, "")


def population_date(end_date: date) -> date:
    """The day ages and registrations count back from: ``CENSUS_DATE``, or ``end_date`` when earlier (no
    one is born or registered after the last day delivered)."""
    return min(end_date, CENSUS_DATE)


def _dates(end_date: date, days_back: np.ndarray) -> tuple[pd.Categorical, pd.DatetimeIndex]:
    """'YYYY-MM-DD' ``days_back`` days before ``end_date`` as a categorical, and its distinct dates.

    A few ten thousand distinct days serve ten million people: format each once.
    """
    uniq, inverse = np.unique(days_back, return_inverse=True)
    days = pd.Timestamp(end_date) - pd.to_timedelta(uniq, unit="D")
    text = pd.Index(days.strftime("%Y-%m-%d"), dtype="str")
    return _categorical(inverse.ravel(), text), days


def _codes_column(values: np.ndarray) -> pd.Categorical:
    """6-digit division codes (integers) as a categorical of their text."""
    uniq, inverse = np.unique(values, return_inverse=True)
    return _categorical(inverse.ravel(), [f"{v:06d}" for v in uniq])


def _phones(rng: np.random.Generator, op_idx: np.ndarray) -> np.ndarray:
    """Unique 11-digit mobile numbers (int64) in the segments of each person's operator."""
    n = len(op_idx)
    out = np.empty(n, dtype=np.int64)
    for o, name in enumerate(OPERATORS):
        mask = op_idx == o
        prefixes = np.array(PHONE_PREFIXES[name], dtype=np.int64)
        m = int(mask.sum())
        slots = rng.choice(len(prefixes) * 10**8, m, replace=False)
        out[mask] = prefixes[slots // 10**8] * 10**8 + slots % 10**8
    return out


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
