"""District-to-district trips per operator and day (出行OD), gzip CSV in each operator's own schema.

Trips are commutes (home county <-> work county of employed subscribers, fewer at weekends) plus
other round trips mostly within the home county; counted per county pair, never per person.
"""

from __future__ import annotations

import gzip
from datetime import date

import numpy as np
import pandas as pd

from demo_city import defects
from demo_city.manifest import Manifest
from demo_city.operators import SUPPRESS_BELOW

OPERATOR_NAMES = {"A": "CMCC", "B": "CUCC", "C": "CTCC"}
STAY_LOCAL = 0.7  # share of non-commute trips that stay in the home county


def od_file(op: str, day: date) -> str:
    return {
        "A": f"operators/cmcc/od/{day:%Y%m%d}/od_district.csv.gz",
        "B": f"operators/cucc/od_{day:%Y%m%d}.csv.gz",
        "C": f"operators/ctcc/{day:%Y-%m-%d}/od.csv.gz",
    }[op]


def subscribers(
    residents: pd.DataFrame, op: str, n_counties: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One operator's subscribers counted once: (commuters per home x work county, per home, per work)."""
    subs = np.flatnonzero((residents["has_phone"] & (residents["operator"] == OPERATOR_NAMES[op])).to_numpy())
    home = residents["county_idx"].to_numpy().astype(np.int64)[subs]
    work = residents["work_county_idx"].to_numpy().astype(np.int64)[subs]
    emp = residents["employed"].to_numpy()[subs]
    pairs = home[emp] * n_counties + work[emp]
    commute = np.bincount(pairs, minlength=n_counties * n_counties).reshape(n_counties, n_counties)
    return (
        commute.astype(float),
        np.bincount(home, minlength=n_counties).astype(float),
        np.bincount(work, minlength=n_counties).astype(float),
    )


def expected_trips(residents: pd.DataFrame, op: str, n_counties: int, day: date) -> np.ndarray:
    return expected_trips_of(subscribers(residents, op, n_counties), n_counties, day)


def expected_trips_of(
    counts: tuple[np.ndarray, np.ndarray, np.ndarray], n_counties: int, day: date
) -> np.ndarray:
    """Expected trips per (origin, destination) county from ``subscribers``' counts."""
    weekday = day.weekday() < 5
    commute, people, workers = counts
    trips = (0.92 if weekday else 0.2) * (commute + commute.T)
    pull = workers + people
    dest = np.tile(pull, (n_counties, 1))
    np.fill_diagonal(dest, 0)
    dest = (1 - STAY_LOCAL) * dest / np.maximum(dest.sum(axis=1, keepdims=True), 1e-12)
    dest[np.diag_indices(n_counties)] = STAY_LOCAL if n_counties > 1 else 1.0
    other = people[:, None] * (0.8 if weekday else 1.2) * dest
    return trips + other + other.T


def write_od(
    landing, residents: pd.DataFrame, counties: pd.DataFrame, days: list[date], seed_rng, manifest: Manifest
) -> None:
    codes = counties["code"].to_numpy(dtype=object)
    k = len(codes)
    o, d = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
    o, d = o.ravel(), d.ravel()
    for op in ("A", "B", "C"):
        rng = seed_rng(op)
        subs = subscribers(residents, op, k)  # once per operator, not per day
        for day in days:
            count = rng.poisson(expected_trips_of(subs, k, day).ravel())
            text = np.where(count < SUPPRESS_BELOW, "<5", count.astype(str)).astype(object)
            if op == "A":
                frame = pd.DataFrame({"o_adcode": codes[o], "d_adcode": codes[d], "trip_cnt": text})
            elif op == "B":
                frame = pd.DataFrame(
                    {
                        "stat_date": f"{day:%Y%m%d}",
                        "origin_district": codes[o],
                        "dest_district": codes[d],
                        "trips": text,
                    }
                )
            else:
                frame = pd.DataFrame({"origin": codes[o], "destination": codes[d], "volume": text})
            rel = od_file(op, day)
            data = defects.csv_bytes(frame, encoding="utf-8", raw={}, rng=rng)
            defects.write_bytes(landing / rel, gzip.compress(data, compresslevel=6, mtime=0))
            manifest.rows_written[rel] = len(frame)
            manifest.suppressed[rel] = int((count < SUPPRESS_BELOW).sum())
