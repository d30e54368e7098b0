"""The 12345 hotline centre's ticket store: every version of every ticket, one JSON Lines file per day.

The store is not a delivery: the lake reads it through the hotline API (``hotline_api``), which serves
each ticket's latest version (as of a moment, for tests). Versions follow a ticket's life — accepted,
in progress, closed — and some tickets get a late update days after closing, which an incremental
reader only sees if it re-reads old days by ``updated_since``.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from demo_city import defects, places, ticket_text
from demo_city.manifest import CONTENT, Manifest

FEED, SOURCE = "hotline_tickets", "api:hotline_tickets"
COLUMNS = ["ticket_id", "received_at", "channel", "category", "district_code", "description", "caller_phone", "handling_unit", "status", "closed_at", "updated_at"]  # fmt: skip
CHANNELS = (["电话", "网站", "微信", "APP"], [0.6, 0.1, 0.15, 0.15])
# category -> (handling unit, complaint texts)
CATEGORIES = {
    "噪音扰民": ("生态环境分局", ["小区附近工地夜间施工噪音很大，影响休息", "楼下商铺音响声音过大"]),
    "道路破损": ("城市管理局", ["路面出现坑洼，车辆通行不便", "人行道地砖松动，老人容易绊倒"]),
    "垃圾清运": ("城市管理局", ["小区垃圾桶满溢无人清运", "路边堆放建筑垃圾多日未处理"]),
    "物业纠纷": ("住房和城乡建设局", ["物业不作为，电梯长期故障", "物业费上涨未经业主大会同意"]),
    "交通出行": ("交通运输局", ["公交班次太少，早高峰等车时间长", "路口信号灯配时不合理"]),
    "供水供电": ("住房和城乡建设局", ["小区停水未提前通知", "楼道照明损坏"]),
    "市场监管": ("市场监督管理局", ["商家虚假宣传，拒绝退款", "超市销售过期食品"]),
    "劳动保障": ("人力资源和社会保障局", ["公司拖欠工资三个月", "单位未缴纳社会保险"]),
    "教育咨询": ("教育局", ["咨询学区划分及入学政策", "学校周边交通安全隐患"]),
    "医疗卫生": ("卫生健康局", ["社区医院预约挂号困难", "咨询疫苗接种时间"]),
}
HOUR_WEIGHTS = np.array(
    [1, 0.5, 0.3, 0.3, 0.3, 0.5, 1, 3, 6, 8, 8, 7, 5, 6, 7, 7, 6, 5, 4, 4, 3, 2, 1.5, 1], float
)
CONTENT_KINDS = ["pii_in_description", "closed_before_received", "late_update"]
CALLER_COLUMNS = ["home_county", "work_county", "name", "phone", "id_number"]
NAMED_PEOPLE = 5000  # residents a description may name besides the caller (a sample, for any city size)


def _fmt(ts: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    return pd.DatetimeIndex(ts).strftime("%Y-%m-%d %H:%M:%S").to_numpy(dtype=object)


def _rows(frame: pd.DataFrame, rows: np.ndarray, columns: list[str]) -> pd.DataFrame:
    """Some columns at some rows, without copying the whole (ten-million-row) frame first."""
    return pd.DataFrame(
        {c: frame[c].iloc[rows].to_numpy(dtype=object) for c in columns}, index=frame.index[rows]
    )


def build_versions(
    rng: np.random.Generator,
    residents: pd.DataFrame,
    counties: pd.DataFrame,
    days: list[date],
    per_day: int,
    rate: float,
    manifest: Manifest,
    labels_path: Path | None = None,
) -> pd.DataFrame:
    """All versions of the tickets received in ``days`` (updated no later than the end of the last day).

    Descriptions are written by ``ticket_text`` with labelled personal data (names, addresses, phones, IDs,
    cards, plates, e-mail), on a random stream of their own so the tickets' other draws do not move;
    ``labels_path`` receives the labels (ground truth for the scrubber's benchmark and tests)."""
    counts = np.maximum(1, rng.poisson(per_day, len(days)))
    n = int(counts.sum())
    day = np.repeat(np.array([pd.Timestamp(d) for d in days]), counts)
    seq = np.concatenate([np.arange(1, c + 1) for c in counts])
    hour = rng.choice(24, n, p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
    received = pd.DatetimeIndex(day) + pd.to_timedelta(hour * 3600 + rng.integers(0, 3600, n), unit="s")
    callers = np.flatnonzero((residents["has_phone"] & (residents["age"] >= 18)).to_numpy())
    who = _rows(residents, callers[rng.integers(0, len(callers), n)], CALLER_COLUMNS)
    district = np.where(rng.random(n) < 0.8, who["home_county"], who["work_county"])
    names = dict(zip(counties["code"], counties["name"], strict=True))
    cats = list(CATEGORIES)
    cat = np.array(cats, dtype=object)[rng.integers(0, len(cats), n)]
    texts = np.array(
        [CATEGORIES[c][1][int(i) % 2] for c, i in zip(cat, rng.integers(0, 2, n), strict=True)], dtype=object
    )
    unit = np.array([names[d] + CATEGORIES[c][0] for d, c in zip(district, cat, strict=True)], dtype=object)
    ticket_id = [f"RX{d:%Y%m%d}{s:06d}" for d, s in zip(pd.DatetimeIndex(day), seq, strict=True)]
    tickets = pd.DataFrame(
        {
            "ticket_id": ticket_id,
            "received_at": _fmt(received),
            "channel": rng.choice(CHANNELS[0], n, p=CHANNELS[1]),
            "category": cat,
            "district_code": district,
            "description": texts,
            "caller_phone": who["phone"].to_numpy(dtype=object),
            "handling_unit": unit,
        }
    )
    horizon = pd.Timestamp(days[-1]) + pd.Timedelta(hours=23, minutes=59, seconds=59)
    t_progress = received + pd.to_timedelta(rng.uniform(0.3, 8, n) * 3600, unit="s")
    t_closed = t_progress + pd.to_timedelta(rng.exponential(30, n) * 3600, unit="s")
    closes = rng.random(n) < 0.92

    alloc = defects.allocate(n, CONTENT_KINDS, rate)
    closed_in_time = closes & (t_closed <= horizon)
    late_ok = closed_in_time & (t_closed + pd.Timedelta(days=1) <= horizon)
    rows = defects.pick(
        rng,
        n,
        {
            "pii_in_description": (alloc["pii_in_description"], None),
            "closed_before_received": (alloc["closed_before_received"], np.asarray(closed_in_time)),
            "late_update": (alloc["late_update"], np.asarray(late_ok)),
        },
    )
    # PII in free text: every description may carry some (labelled); these callers surely dictate a phone
    # number and/or an ID number.
    i = rows["pii_in_description"]
    kind = rng.choice(["phone", "id", "both"], len(i))
    must = [()] * n
    for row, k in zip(i, kind, strict=True):
        must[row] = {"phone": ("mobile",), "id": ("resident_id",), "both": ("mobile", "resident_id")}[k]
    prefixes = dict(zip(counties["code"], places.address_prefix(counties), strict=True))
    tickets["description"], spans = _describe(rng.spawn(1)[0], tickets, who, residents, prefixes, must)
    if labels_path is not None:
        ticket_text.write_labels(labels_path, tickets, spans)
    manifest.add(FEED, SOURCE, CONTENT, "pii_in_description", None, tickets.loc[i, "ticket_id"], kind)

    v1 = tickets.assign(status="受理", closed_at=None, updated_at=tickets["received_at"], version=1)
    v2 = tickets.assign(status="办理中", closed_at=None, updated_at=_fmt(t_progress), version=2)[
        np.asarray(t_progress <= horizon)
    ]
    closed_at = _fmt(t_closed)
    i = rows["closed_before_received"]
    early = received[i] - pd.to_timedelta(rng.uniform(1, 48, len(i)) * 3600, unit="s")
    closed_at[i] = _fmt(early)
    manifest.add(
        FEED,
        SOURCE,
        CONTENT,
        "closed_before_received",
        None,
        tickets.loc[i, "ticket_id"],
        "closed_at=" + pd.Series(closed_at[i]),
    )
    v3 = tickets.assign(status="已办结", closed_at=closed_at, updated_at=_fmt(t_closed), version=3)[
        np.asarray(closed_in_time)
    ]
    i = rows["late_update"]
    room = np.minimum(
        (horizon - t_closed[i]).total_seconds().to_numpy(), 3 * 86400
    )  # >= 1 day by eligibility
    late_at = t_closed[i] + pd.to_timedelta(86400 + rng.random(len(i)) * (room - 86400), unit="s")
    v4 = tickets.iloc[i].assign(status="已办结", closed_at=closed_at[i], updated_at=_fmt(late_at), version=4)
    v4["handling_unit"] = v4["handling_unit"] + "(回访)"  # a follow-up call recorded days later
    manifest.add(
        FEED, SOURCE, CONTENT, "late_update", None, v4["ticket_id"], "updated_at=" + v4["updated_at"]
    )
    versions = pd.concat([v1, v2, v3, v4], ignore_index=True)
    return versions.sort_values(["ticket_id", "version"], ignore_index=True)


def _describe(rng, tickets: pd.DataFrame, who: pd.DataFrame, residents: pd.DataFrame, prefixes, must):
    """Each ticket's description (its complaint, then what the caller adds) and its labelled spans."""
    others = residents["name"].iloc[rng.integers(0, len(residents), NAMED_PEOPLE)].to_numpy(dtype=object)
    writer = ticket_text.TicketWriter(
        rng, list(prefixes.values()), others, int(rng.integers(2**31)), list(prefixes)
    )
    texts, spans = [], []
    callers = zip(who["name"], who["phone"], who["id_number"], strict=True)
    for complaint, district, (name, phone, id_number), forced in zip(
        tickets["description"], tickets["district_code"], callers, must, strict=True
    ):
        caller = ticket_text.Caller(str(name), str(phone), str(id_number))
        text, ticket_spans = writer.describe(complaint, caller, prefixes[district], forced)
        texts.append(text)
        spans.append(ticket_spans)
    return np.array(texts, dtype=object), spans


def write_store(store_dir: Path, versions: pd.DataFrame) -> list[Path]:
    """One ``tickets_<YYYYMMDD>.jsonl`` per received day, every version a line."""
    store_dir.mkdir(parents=True, exist_ok=True)
    for old in store_dir.glob("tickets_*.jsonl"):
        old.unlink()
    paths = []
    day = versions["received_at"].str[:10]
    for d, part in versions.groupby(day, sort=True):
        path = store_dir / f"tickets_{d.replace('-', '')}.jsonl"
        records = part[[*COLUMNS, "version"]].astype(object).where(part.notna(), None).to_dict("records")
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
        paths.append(path)
    return paths
