"""Hospitals and clinics (health commission, .xlsx in GCJ-02) and schools (education, CSV in BD-09).

Facilities are placed where people live (next to a random resident's home), sized to the county's
population, and delivered in the coordinate system each department really uses; the truth keeps WGS-84.
"""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pandas as pd
import prcoords

from citybrain.ingest import reasons
from demo_city import defects, places, vocab, xlsx
from demo_city.manifest import CONTENT, RAW, Manifest

MEDICAL_FEED, SCHOOL_FEED = "medical_facilities", "schools"
MEDICAL_COLUMNS = ["facility_id", "name", "category", "grade", "district_code", "address", "lng_gcj02", "lat_gcj02", "beds", "doctors", "updated_on"]  # fmt: skip
SCHOOL_COLUMNS = ["school_id", "name", "stage", "district_code", "address", "lng_bd09", "lat_bd09", "capacity", "enrolment", "term"]  # fmt: skip
HOSPITAL_GRADES = (["三级甲等", "三级乙等", "二级甲等", "二级乙等", "一级甲等"], [0.2, 0.15, 0.3, 0.2, 0.15])
BEDS_BY_LEVEL = {"三": (500, 2000), "二": (150, 500), "一": (20, 100)}
# Stage: (residents per school, min per county, ages served, name ending)
STAGES = {
    "小学": (2500, 1, (6, 11), "小学"),
    "初中": (6000, 1, (12, 14), "中学"),
    "九年一贯制": (20000, 0, (6, 14), "学校"),
    "高中": (15000, 1, (15, 17), "高级中学"),
}


def term_of(day: date) -> str:
    """School term on a day: '2026-autumn' (September-January), '2026-spring' (February-August)."""
    if day.month >= 9:
        return f"{day.year}-autumn"
    if day.month == 1:
        return f"{day.year - 1}-autumn"
    return f"{day.year}-spring"


def _near_homes(
    rng: np.random.Generator, residents: pd.DataFrame, county_idx: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """A WGS-84 point next to a random resident's home in each requested county."""
    lng = np.empty(len(county_idx))
    lat = np.empty(len(county_idx))
    county = residents["county_idx"].to_numpy().astype(np.int64)
    by_county = pd.Series(county).groupby(county).indices
    for c in np.unique(county_idx):
        where = np.flatnonzero(county_idx == c)
        homes = by_county[c][rng.integers(0, len(by_county[c]), len(where))]
        lng[where] = residents["home_lng"].to_numpy()[homes] + rng.normal(0, 0.003, len(where))
        lat[where] = residents["home_lat"].to_numpy()[homes] + rng.normal(0, 0.003, len(where))
    return np.round(lng, 6), np.round(lat, 6)


def build_medical(
    rng: np.random.Generator, counties: pd.DataFrame, residents: pd.DataFrame, end_date: date
) -> pd.DataFrame:
    pop = np.bincount(residents["county_idx"], minlength=len(counties))
    n_hosp = np.maximum(1, np.round(pop / 50000)).astype(int)
    n_primary = np.maximum(1, np.round(pop / 5000)).astype(int)
    k = np.r_[np.repeat(np.arange(len(counties)), n_hosp), np.repeat(np.arange(len(counties)), n_primary)]
    hospital = np.r_[np.ones(n_hosp.sum(), bool), np.zeros(n_primary.sum(), bool)]
    n = len(k)
    rural = counties["code"].str[4:].astype(int).to_numpy()[k] >= 20  # 县 and 县级市 codes
    primary_cat = np.where(rng.random(n) < 0.35, np.where(rural, "卫生院", "社区卫生服务中心"), "诊所")
    category = np.where(hospital, np.where(rng.random(n) < 0.7, "综合医院", "专科医院"), primary_cat)
    grade = np.where(hospital, rng.choice(HOSPITAL_GRADES[0], n, p=HOSPITAL_GRADES[1]), "未定级")
    level = pd.Series(grade).str[0].to_numpy()
    beds = np.zeros(n, dtype=np.int64)
    for lv, (lo, hi) in BEDS_BY_LEVEL.items():
        m = hospital & (level == lv)
        beds[m] = rng.integers(lo, hi, int(m.sum()))
    centre = np.isin(category, ["社区卫生服务中心", "卫生院"])
    beds[centre] = rng.integers(0, 60, int(centre.sum()))
    doctors = np.where(
        hospital,
        beds * rng.uniform(0.3, 0.5, n),
        np.where(centre, rng.integers(8, 60, n), rng.integers(1, 6, n)),
    )
    codes = counties["code"].to_numpy(dtype=object)[k]
    names = counties["name"].to_numpy(dtype=object)[k]
    brand = vocab.brands(rng, n)
    ending = (
        pd.Series(category)
        .map(
            {
                "综合医院": "医院",
                "专科医院": "专科医院",
                "社区卫生服务中心": "街道社区卫生服务中心",
                "卫生院": "镇卫生院",
                "诊所": "诊所",
            }
        )
        .to_numpy(dtype=object)
    )
    seq = np.arange(1, n + 1)
    cat_code = pd.Series(category).map(
        {"综合医院": "A1", "专科医院": "A5", "社区卫生服务中心": "B1", "卫生院": "C1", "诊所": "D1"}
    )
    org = rng.choice(10**8, n, replace=False)
    lng, lat = _near_homes(rng, residents, k)
    updated = pd.Timestamp(end_date) - pd.to_timedelta(rng.integers(0, 400, n), unit="D")
    return pd.DataFrame(
        {
            "facility_id": [
                f"{o:08d}{c}{cc}{s:03d}" for o, c, cc, s in zip(org, codes, cat_code, seq % 1000, strict=True)
            ],
            "name": names + brand + ending,
            "category": category,
            "grade": grade,
            "district_code": codes,
            "address": places.street_addresses(rng, k, counties, rooms=False),
            "lng": lng,
            "lat": lat,
            "beds": beds,
            "doctors": np.round(doctors).astype(np.int64),
            "updated_on": updated.strftime("%Y-%m-%d"),
        }
    )


def write_medical(
    landing, med: pd.DataFrame, counties: pd.DataFrame, end_date: date, rate: float, rng, manifest: Manifest
) -> str:
    rel = f"health/medical_facilities_{end_date:%Y%m}.xlsx"
    out = med.copy()
    gcj = [prcoords.wgs_gcj((la, lo)) for lo, la in zip(out["lng"], out["lat"], strict=True)]
    out["lng_gcj02"] = np.round([g.lon for g in gcj], 6)
    out["lat_gcj02"] = np.round([g.lat for g in gcj], 6)
    kinds = ["swapped_lng_lat", "outside_city", reasons.MISSING_KEY]
    counts = defects.allocate(len(out), kinds, rate)
    rows = defects.pick(rng, len(out), {kind: (counts[kind], None) for kind in kinds})
    i = rows["swapped_lng_lat"]
    out.loc[i, ["lng_gcj02", "lat_gcj02"]] = out.loc[i, ["lat_gcj02", "lng_gcj02"]].to_numpy()
    manifest.add(MEDICAL_FEED, rel, CONTENT, "swapped_lng_lat", i + 1, out.loc[i, "facility_id"])
    i = rows["outside_city"]
    far = _far_points(rng, counties, len(i))
    out.loc[i, "lng_gcj02"], out.loc[i, "lat_gcj02"] = far[:, 0], far[:, 1]
    manifest.add(
        MEDICAL_FEED,
        rel,
        CONTENT,
        "outside_city",
        i + 1,
        out.loc[i, "facility_id"],
        [f"moved to {a:.4f},{b:.4f}" for a, b in far],
    )
    i = rows[reasons.MISSING_KEY]
    manifest.add(MEDICAL_FEED, rel, RAW, reasons.MISSING_KEY, i + 1, "", "clean=" + out.loc[i, "facility_id"])
    out.loc[i, "facility_id"] = None
    records = out[MEDICAL_COLUMNS].astype(object).to_numpy().tolist()
    for r in records:  # openpyxl wants Python ints and floats
        r[6], r[7], r[8], r[9] = float(r[6]), float(r[7]), int(r[8]), int(r[9])
    stamp = datetime(end_date.year, end_date.month, end_date.day, 20, 0, 0)
    xlsx.write_sheet(landing / rel, "医疗机构", MEDICAL_COLUMNS, records, stamp)
    manifest.rows_written[rel] = len(records)
    return rel


def _far_points(rng: np.random.Generator, counties: pd.DataFrame, n: int) -> np.ndarray:
    """Points 4-8 degrees away from the city: plausible coordinates, wrong place."""
    angle = rng.uniform(0, 2 * np.pi, n)
    dist = rng.uniform(4, 8, n)
    lng = counties["lng"].mean() + dist * np.cos(angle)
    lat = np.clip(counties["lat"].mean() + dist * np.sin(angle) * 0.6, 19, 50)
    return np.round(np.c_[lng, lat], 6)


def build_schools(
    rng: np.random.Generator, counties: pd.DataFrame, residents: pd.DataFrame, end_date: date
) -> pd.DataFrame:
    pop = np.bincount(residents["county_idx"], minlength=len(counties))
    frames = []
    for stage, (per, minimum, (a0, a1), ending) in STAGES.items():
        count = np.maximum(minimum, np.round(pop / per)).astype(int)
        k = np.repeat(np.arange(len(counties)), count)
        if not len(k):
            continue
        kids = ((residents["age"] >= a0) & (residents["age"] <= a1)).to_numpy()
        kids_per_county = np.bincount(residents["county_idx"].to_numpy()[kids], minlength=len(counties))
        share = rng.dirichlet(np.full(len(k), 4.0))
        # Split each county's seats among its schools of this stage.
        seats = np.empty(len(k))
        for c in np.unique(k):
            m = k == c
            w = share[m] / share[m].sum()
            seats[m] = w * max(kids_per_county[c], 30) * rng.uniform(0.9, 1.2)
        capacity = np.maximum(60, np.round(seats / 30) * 30).astype(np.int64)
        frames.append(
            pd.DataFrame(
                {
                    "county_idx": k,
                    "stage": stage,
                    "name": counties["name"].to_numpy(dtype=object)[k] + vocab.brands(rng, len(k)) + ending,
                    "capacity": capacity,
                    "enrolment": np.floor(capacity * rng.uniform(0.75, 0.98, len(k))).astype(np.int64),
                }
            )
        )
    df = pd.concat(frames, ignore_index=True)
    k = df["county_idx"].to_numpy()
    prov = counties["province_code"].str[:2].to_numpy(dtype=object)[k]
    serial = pd.Series(rng.choice(10**6, len(df), replace=False)).map("{:06d}".format).to_numpy(dtype=object)
    df["school_id"] = "21" + prov + serial  # 学校标识码: 10 digits, 2 + province + serial
    df["district_code"] = counties["code"].to_numpy(dtype=object)[k]
    df["address"] = places.street_addresses(rng, k, counties, rooms=False)
    df["lng"], df["lat"] = _near_homes(rng, residents, k)
    df["term"] = term_of(end_date)
    return df


def write_schools(
    landing, schools: pd.DataFrame, end_date: date, rate: float, rng, manifest: Manifest
) -> str:
    # Named by the month the term's list was issued (September or February), so that snapshots sort by date.
    term = term_of(end_date)
    year, season = term.split("-")
    rel = f"education/schools_{year}{'09' if season == 'autumn' else '02'}.csv"
    out = schools.copy()
    bd = [prcoords.wgs_bd((la, lo)) for lo, la in zip(out["lng"], out["lat"], strict=True)]
    out["lng_bd09"] = np.round([b.lon for b in bd], 6)
    out["lat_bd09"] = np.round([b.lat for b in bd], 6)
    kinds = ["enrolment_over_capacity", reasons.COLUMN_COUNT_MISMATCH]
    counts = defects.allocate(len(out), kinds, rate)
    rows = defects.pick(rng, len(out), {kind: (counts[kind], None) for kind in kinds})
    i = rows["enrolment_over_capacity"]
    out.loc[i, "enrolment"] = np.ceil(out.loc[i, "capacity"] * rng.uniform(1.05, 1.3, len(i))).astype(
        np.int64
    )
    manifest.add(
        SCHOOL_FEED,
        rel,
        CONTENT,
        "enrolment_over_capacity",
        i + 1,
        out.loc[i, "school_id"],
        "capacity="
        + out.loc[i, "capacity"].astype(str)
        + " enrolment="
        + out.loc[i, "enrolment"].astype(str),
    )
    raw = {reasons.COLUMN_COUNT_MISMATCH: rows[reasons.COLUMN_COUNT_MISMATCH]}
    data = defects.csv_bytes(
        out[SCHOOL_COLUMNS], encoding="utf-8-sig", raw=raw, rng=rng, split_column="address"
    )
    i = rows[reasons.COLUMN_COUNT_MISMATCH]
    manifest.add(SCHOOL_FEED, rel, RAW, reasons.COLUMN_COUNT_MISMATCH, i + 1, out.loc[i, "school_id"])
    defects.write_bytes(landing / rel, data)
    manifest.rows_written[rel] = len(out)
    return rel
