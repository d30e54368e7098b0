"""The e-government service centre's applications (办件): one UTF-8 CSV per day.

Applicants are real registry people (their resident ID) or registered enterprises (their USCC), so
the pool can join applications to residents and enterprises. A day's file holds the applications
submitted that day as they stood at the end of it.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from citybrain.ingest import reasons
from demo_city import defects
from demo_city.manifest import CONTENT, RAW, Manifest

FEED = "egov_applications"
COLUMNS = ["application_id", "service_code", "service_name", "applicant_type", "applicant_id", "submitted_at", "channel", "visits", "completed_at", "district_code", "cross_region", "status"]  # fmt: skip
PERSON, ORG = "自然人", "法人"
SERVICES = [
    ("XK-0101", "户口迁移登记", PERSON),
    ("GG-0102", "居住证申领", PERSON),
    ("GG-0103", "社会保障卡申领", PERSON),
    ("GG-0104", "住房公积金提取", PERSON),
    ("GG-0105", "生育登记", PERSON),
    ("GG-0106", "老年人优待证办理", PERSON),
    ("XK-0107", "机动车驾驶证换领", PERSON),
    ("XK-0108", "不动产登记", PERSON),
    ("GG-0109", "医保关系转移接续", PERSON),
    ("XK-0201", "企业设立登记", ORG),
    ("XK-0202", "企业变更登记", ORG),
    ("XK-0203", "食品经营许可", ORG),
    ("XK-0204", "建筑工程施工许可", ORG),
    ("XK-0205", "公共场所卫生许可", ORG),
    ("GG-0206", "单位社会保险参保登记", ORG),
]
CHANNELS = (["网上", "窗口", "自助终端"], [0.55, 0.35, 0.10])
STATUSES = (["已办结", "办理中", "不予受理"], [0.72, 0.24, 0.04])
CONTENT_KINDS = ["missing_completion", "cross_region"]
RAW_KINDS = [reasons.COLUMN_COUNT_MISMATCH, reasons.MISSING_KEY]


def build_day(
    rng: np.random.Generator, day: date, per_day: int, residents: pd.DataFrame, entities: pd.DataFrame
) -> pd.DataFrame:
    n = max(1, int(rng.poisson(per_day)))
    svc = rng.integers(0, len(SERVICES), n)
    kind = np.array([SERVICES[s][2] for s in svc], dtype=object)
    person = kind == PERSON
    adults = np.flatnonzero((residents["age"] >= 18).to_numpy())
    firms = entities[entities["in_entity_registry"] & (entities["status"] == "存续")]
    picked = adults[rng.integers(0, len(adults), n)]
    who = {c: residents[c].iloc[picked] for c in ("id_number", "home_county")}  # not the whole frame
    firm = firms.iloc[rng.integers(0, len(firms), n)]
    applicant = np.where(person, who["id_number"].to_numpy(dtype=object), firm["uscc"].to_numpy(dtype=object))
    district = np.where(
        person, who["home_county"].to_numpy(dtype=object), firm["district_code"].to_numpy(dtype=object)
    )
    channel = rng.choice(CHANNELS[0], n, p=CHANNELS[1])
    online = channel == "网上"
    hours = np.where(online, rng.uniform(0, 24, n), rng.uniform(8.5, 17, n))
    submitted = pd.Timestamp(day) + pd.to_timedelta((hours * 3600).astype(np.int64), unit="s")
    visits = np.where(
        online, (rng.random(n) < 0.1).astype(int), 1 + (rng.random(n) < 0.12) + (rng.random(n) < 0.03)
    )
    status = rng.choice(STATUSES[0], n, p=STATUSES[1])
    end_of_day = pd.Timestamp(day) + pd.Timedelta(hours=23, minutes=59, seconds=59)
    done = submitted + pd.to_timedelta(rng.uniform(300, 8 * 3600, n).astype(np.int64), unit="s")
    done = pd.DatetimeIndex(np.minimum(done, end_of_day))
    df = pd.DataFrame(
        {
            "service_code": [f"{d[:2]}0000-{SERVICES[s][0]}" for d, s in zip(district, svc, strict=True)],
            "service_name": [SERVICES[s][1] for s in svc],
            "applicant_type": kind,
            "applicant_id": applicant,
            "submitted_at": submitted.strftime("%Y-%m-%d %H:%M:%S"),
            "channel": channel,
            "visits": visits.astype(np.int64),
            "completed_at": np.where(status == "已办结", done.strftime("%Y-%m-%d %H:%M:%S"), ""),
            "district_code": district,
            "cross_region": "N",
            "status": status,
        }
    )
    df = df.sort_values("submitted_at", kind="stable", ignore_index=True)
    df.insert(0, "application_id", [f"ZW{day:%Y%m%d}{i:06d}" for i in range(1, n + 1)])
    return df


def write_day(
    landing, df: pd.DataFrame, day: date, counties: pd.DataFrame, rate: float, rng, manifest: Manifest
) -> str:
    rel = f"egov/applications_{day:%Y%m%d}.csv"
    out = df.copy()
    n = len(out)
    counts = defects.allocate(n, CONTENT_KINDS + RAW_KINDS, rate)
    rows = defects.pick(
        rng,
        n,
        {
            "missing_completion": (counts["missing_completion"], (out["status"] == "已办结").to_numpy()),
            "cross_region": (counts["cross_region"], None),
            **{k: (counts[k], None) for k in RAW_KINDS},
        },
    )
    i = rows["missing_completion"]
    out.loc[i, "completed_at"] = ""
    manifest.add(FEED, rel, CONTENT, "missing_completion", i + 1, out.loc[i, "application_id"])
    # Cross-region (跨域通办): accepted in another configured county than the applicant's own.
    i = rows["cross_region"]
    codes = counties["code"].to_numpy(dtype=object)
    home = out.loc[i, "district_code"].to_numpy(dtype=object)
    pos = {c: j for j, c in enumerate(codes)}
    step = rng.integers(1, max(2, len(codes)), len(i))
    other = np.array(
        [codes[(pos[h] + s) % len(codes)] for h, s in zip(home, step, strict=True)], dtype=object
    )
    out.loc[i, "district_code"] = other
    out.loc[i, "cross_region"] = "Y"
    manifest.add(
        FEED,
        rel,
        CONTENT,
        "cross_region",
        i + 1,
        out.loc[i, "application_id"],
        ["applicant_district=" + h + " accepted_in=" + o for h, o in zip(home, other, strict=True)],
    )
    i = rows[reasons.MISSING_KEY]
    manifest.add(FEED, rel, RAW, reasons.MISSING_KEY, i + 1, "", "clean=" + out.loc[i, "application_id"])
    out.loc[i, "application_id"] = ""
    i = rows[reasons.COLUMN_COUNT_MISMATCH]
    manifest.add(FEED, rel, RAW, reasons.COLUMN_COUNT_MISMATCH, i + 1, out.loc[i, "application_id"])
    raw = {reasons.COLUMN_COUNT_MISMATCH: i}
    data = defects.csv_bytes(out[COLUMNS], encoding="utf-8", raw=raw, rng=rng, split_column="service_name")
    defects.write_bytes(landing / rel, data)
    manifest.rows_written[rel] = n
    return rel
