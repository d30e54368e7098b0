"""The three operators' view of the city: market shares, spatial units and hourly presence.

Each operator sees only its own subscribers and aggregates them on its own spatial key — A: H3 cells
(res 8, WGS-84); B: a 500 m grid in GCJ-02; C: its base-station cells. Presence per unit and hour is
"people whose home is here" minus the workers who left plus the workers who arrived, scaled by how
many phones are seen that hour, with Poisson noise; counts below 5 are suppressed as operators do.
Aggregation is per unit (thousands of rows), never per person and hour.
"""

from __future__ import annotations

from datetime import date

import h3
import numpy as np
import pandas as pd
import prcoords
from h3.api import basic_int as h3_int

from citybrain.ingest import reasons
from demo_city import defects
from demo_city.manifest import CONTENT, RAW, Manifest
from demo_city.population import OPERATORS

SUPPRESS_BELOW = 5
H3_RES = 8
CELL_SQUARE_DEG = 0.01  # operator C: one base-station cell per ~1 km square that has people
# Share of workers at their workplace per hour (weekday); weekends see 20 % of it.
AT_WORK = np.array([0, 0, 0, 0, 0, 0, 0.02, 0.2, 0.6, 0.85, 0.88, 0.85, 0.7, 0.82, 0.88, 0.88, 0.82, 0.6, 0.3, 0.15, 0.08, 0.05, 0.03, 0.01])  # fmt: skip
SEEN = np.array([0.9] * 6 + [0.95] * 17 + [0.92])  # share of phones that signal within the hour
FEEDS = {"A": "operator_a_presence", "B": "operator_b_presence", "C": "operator_c_presence"}


def market_shares(rng: np.random.Generator, counties: pd.DataFrame) -> pd.DataFrame:
    """Per-district subscriber shares in 1/10000 steps that sum to exactly 1."""
    k = len(counties)
    a = np.round(rng.uniform(0.52, 0.62, k) * 10000).astype(int)
    b = np.round(rng.uniform(0.17, 0.25, k) * 10000).astype(int)
    c = 10000 - a - b
    rows = []
    for code, *units in zip(counties["code"], a, b, c, strict=True):
        rows += [(code, op, u / 10000) for op, u in zip(OPERATORS, units, strict=True)]
    return pd.DataFrame(rows, columns=["district_code", "operator", "share"])


def write_market_share(landing, shares: pd.DataFrame, end_date: date, manifest: Manifest) -> str:
    rel = f"operators/market_share_{end_date:%Y%m}.csv"
    out = pd.DataFrame(
        {
            "district_code": shares["district_code"],
            "operator": shares["operator"],
            "subscriber_share": shares["share"].map("{:.4f}".format),
            "month": f"{end_date:%Y-%m}",
        }
    )
    defects.write_bytes(landing / rel, defects.csv_bytes(out, encoding="utf-8", raw={}, rng=None))
    manifest.rows_written[rel] = len(out)
    return rel


# -- spatial units --------------------------------------------------------------------------------------
POINT_CHUNK = 200_000  # distinct points converted per batch of Python calls (h3, prcoords)


def _per_point(lng: np.ndarray, lat: np.ndarray, key_of) -> tuple[np.ndarray, np.ndarray]:
    """``key_of(lat, lng)`` (an int64 key) once per distinct point, in batches; (keys, point -> key index).

    A Python call per distinct point is unavoidable (h3, prcoords), but holding millions of Python
    tuples and strings at once is not: only int64 keys are kept, and text is made per distinct key.
    """
    pts, inverse = np.unique(np.c_[lat, lng], axis=0, return_inverse=True)
    keys = np.empty(len(pts), dtype=np.int64)
    for start in range(0, len(pts), POINT_CHUNK):
        batch = pts[start : start + POINT_CHUNK].tolist()
        keys[start : start + len(batch)] = [key_of(a, b) for a, b in batch]
    del pts
    uniq, key_index = np.unique(keys, return_inverse=True)
    return uniq, key_index.ravel()[inverse.ravel()]


def _h3_cells(lng: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Operator A's unit: the H3 cell (res 8) of each point, as text."""
    uniq, idx = _per_point(lng, lat, lambda a, b: h3_int.latlng_to_cell(a, b, H3_RES))
    names = np.array([h3.int_to_str(int(c)) for c in uniq], dtype=object)
    return names[idx]


GRID_OFFSET = 1 << 24  # keeps (col, row) non-negative inside one int64 key


def _gcj_key(lat: float, lng: float) -> int:
    """Operator B's grid (col, row) of one WGS-84 point, packed into one int64."""
    gcj = prcoords.wgs_gcj((lat, lng))
    col = int(np.floor((gcj.lon - 73) / 0.005))
    row = int(np.floor((gcj.lat - 18) / 0.0045))
    return ((col + GRID_OFFSET) << 26) + row + GRID_OFFSET


def _gcj_grid(lng: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Operator B's grid id: floor((lng-73)/0.005)_floor((lat-18)/0.0045) on GCJ-02 coordinates."""
    uniq, idx = _per_point(lng, lat, _gcj_key)
    col = (uniq >> 26) - GRID_OFFSET
    row = (uniq & ((1 << 26) - 1)) - GRID_OFFSET
    names = np.array([f"{c}_{r}" for c, r in zip(col.tolist(), row.tolist(), strict=True)], dtype=object)
    return names[idx]


def _squares(lng: np.ndarray, lat: np.ndarray) -> np.ndarray:
    return np.floor(lng / CELL_SQUARE_DEG).astype(np.int64) * 100000 + np.floor(lat / CELL_SQUARE_DEG).astype(
        np.int64
    )


def build_cells(rng: np.random.Generator, residents: pd.DataFrame) -> pd.DataFrame:
    """Operator C's cells: one per ~1 km square where anyone lives or works, at its people's centre.

    Districts are grouped by their rank in code order (not as text): the same groups and tie order.
    """
    home_k = _county_codes(residents["home_county"])
    work_k = _county_codes(residents["work_county"])
    codes = np.unique(np.r_[home_k[1], work_k[1]])
    pts = pd.DataFrame(
        {
            "sq": np.r_[
                _squares(residents["home_lng"].to_numpy(), residents["home_lat"].to_numpy()),
                _squares(residents["work_lng"].to_numpy(), residents["work_lat"].to_numpy()),
            ],
            "lng": np.r_[residents["home_lng"], residents["work_lng"]],
            "lat": np.r_[residents["home_lat"], residents["work_lat"]],
            "county": np.r_[
                np.searchsorted(codes, home_k[1])[home_k[0]], np.searchsorted(codes, work_k[1])[work_k[0]]
            ].astype(np.int32),
        }
    )
    del home_k, work_k
    g = pts.groupby("sq", sort=True)
    cells = g.agg(lng=("lng", "mean"), lat=("lat", "mean"), people=("lng", "size"))
    county = (
        pts.groupby(["sq", "county"])
        .size()
        .reset_index(name="n")
        .sort_values(["sq", "n"], ascending=[True, False])
    )
    del g, pts
    first = county.drop_duplicates("sq").set_index("sq")["county"]
    cells["district_code"] = pd.Series(codes[first.to_numpy()].astype(object), index=first.index)
    n = len(cells)
    enb = rng.choice(np.arange(100000, 1000000), n, replace=False)
    cells["cell_id"] = [f"460-11-{e}-{s}" for e, s in zip(enb, rng.integers(1, 4, n), strict=True)]
    cells["lng"] = np.round(cells["lng"] + rng.normal(0, 0.0008, n), 6)
    cells["lat"] = np.round(cells["lat"] + rng.normal(0, 0.0008, n), 6)
    cells["coverage_radius_m"] = np.select([cells["people"] > 2000, cells["people"] > 300], [300, 600], 1200)
    return cells.reset_index()


def _county_codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(per-row index into distinct codes, distinct codes as text): a categorical's own codes when it is one."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.codes.to_numpy(), np.asarray(values.cat.categories, dtype=object)
    codes, uniques = pd.factorize(values)
    return codes, np.asarray(uniques, dtype=object)


def write_cells(landing, cells: pd.DataFrame, manifest: Manifest) -> str:
    rel = "operators/ctcc/cell_sites.csv"
    out = cells[["cell_id", "lng", "lat", "district_code", "coverage_radius_m"]]
    defects.write_bytes(landing / rel, defects.csv_bytes(out, encoding="utf-8", raw={}, rng=None))
    manifest.rows_written[rel] = len(out)
    return rel


def unit_table(residents: pd.DataFrame, op: str, cells: pd.DataFrame) -> pd.DataFrame:
    """For one operator: per spatial unit, subscribers living there, workers living there, workers working there."""
    name = {"A": "CMCC", "B": "CUCC", "C": "CTCC"}[op]
    subs = np.flatnonzero((residents["has_phone"] & (residents["operator"] == name)).to_numpy())
    hl, ha = residents["home_lng"].to_numpy()[subs], residents["home_lat"].to_numpy()[subs]
    wl, wa = residents["work_lng"].to_numpy()[subs], residents["work_lat"].to_numpy()[subs]
    if op == "A":
        home, work = _h3_cells(hl, ha), _h3_cells(wl, wa)
    elif op == "B":
        home, work = _gcj_grid(hl, ha), _gcj_grid(wl, wa)
    else:
        cell_of = pd.Series(cells["cell_id"].to_numpy(), index=cells["sq"].to_numpy())
        home = cell_of.reindex(_squares(hl, ha)).to_numpy()
        work = cell_of.reindex(_squares(wl, wa)).to_numpy()
    worker = residents["employed"].to_numpy()[subs]
    homes = pd.Series(home).value_counts()
    home_workers = pd.Series(home[worker]).value_counts()
    arrivals = pd.Series(work[worker]).value_counts()
    units = pd.DataFrame({"home": homes, "home_workers": home_workers, "work": arrivals}).fillna(0.0)
    return units.sort_index()


def hourly_counts(
    rng: np.random.Generator, units: pd.DataFrame, day: date
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(unit index, hour, count) for every unit-hour with people, ordered by hour then unit."""
    f = AT_WORK * (1.0 if day.weekday() < 5 else 0.2)
    present = (
        units["home"].to_numpy()[:, None]
        + f[None, :] * (units["work"].to_numpy() - units["home_workers"].to_numpy())[:, None]
    )
    hour, unit = np.nonzero((present >= 0.5).T)
    expected = present[unit, hour] * SEEN[hour]
    return unit, hour, rng.poisson(expected)


def _missing_hours(rng: np.random.Generator, rate: float) -> np.ndarray:
    if rate <= 0:
        return np.array([], dtype=int)
    n = int(min(6, max(1, round(24 * rate * 4))))
    return np.sort(rng.choice(24, n, replace=False))


def presence_file(op: str, day: date) -> str:
    return {
        "A": f"operators/cmcc/presence/{day:%Y%m%d}/presence_h3_r8.csv",
        "B": f"operators/cucc/grid_presence_{day:%Y%m%d}.parquet",
        "C": f"operators/ctcc/{day:%Y-%m-%d}/cell_user_count.csv",
    }[op]


def write_presence(
    landing,
    demo_dir,
    residents: pd.DataFrame,
    cells: pd.DataFrame,
    days: list[date],
    rate: float,
    seed_rng,
    manifest: Manifest,
) -> None:
    """All presence files of the three operators, with missing hours, raw rows and A's redelivery."""
    for op in ("A", "B", "C"):
        rng = seed_rng(op)
        units = unit_table(residents, op, cells)
        names = units.index.to_numpy(dtype=object)
        gap_day = int(rng.integers(len(days)))
        gap_hours = _missing_hours(rng, rate)
        for d_i, day in enumerate(days):
            rel = presence_file(op, day)
            unit, hour, count = hourly_counts(rng, units, day)
            drop = np.array([], dtype=int)
            redelivered = op == "A" and d_i == 0 and rate > 0
            if redelivered:
                drop = np.array([21, 22, 23])  # the first delivery was cut off before the evening hours
            elif op != "A" and d_i == gap_day:
                drop = gap_hours
            if redelivered:
                full = _frame(op, day, names[unit], hour, count)
                path = demo_dir / "redelivery" / rel
                defects.write_bytes(path, defects.csv_bytes(full, encoding="utf-8", raw={}, rng=rng))
                manifest.redeliveries.append(
                    {
                        "feed": FEEDS[op],
                        "file": rel,
                        "corrected": f"redelivery/{rel}",
                        "rows": len(full),
                        "suppressed": int((count < SUPPRESS_BELOW).sum()),
                    }
                )
                manifest.add(
                    FEEDS[op],
                    rel,
                    CONTENT,
                    "redelivered_file",
                    None,
                    "",
                    f"corrected version at redelivery/{rel}",
                )
            keep = ~np.isin(hour, drop)
            for h in drop:
                manifest.add(FEEDS[op], rel, CONTENT, "missing_hour", None, _hour_key(op, day, h))
            frame = _frame(op, day, names[unit[keep]], hour[keep], count[keep])
            manifest.suppressed[rel] = int((count[keep] < SUPPRESS_BELOW).sum())
            manifest.rows_written[rel] = len(frame)
            if op == "B":
                _write_parquet(landing / rel, frame)
                continue
            raw = {}
            if op == "A":
                k = defects.allocate(len(frame), [reasons.COLUMN_COUNT_MISMATCH], rate)[
                    reasons.COLUMN_COUNT_MISMATCH
                ]
                raw = defects.pick(rng, len(frame), {reasons.COLUMN_COUNT_MISMATCH: (k, None)})
                i = raw[reasons.COLUMN_COUNT_MISMATCH]
                keys = (
                    frame["h3_index"].to_numpy(dtype=object)[i]
                    + " "
                    + frame["stat_hour"].to_numpy(dtype=object)[i]
                )
                manifest.add(FEEDS[op], rel, RAW, reasons.COLUMN_COUNT_MISMATCH, i + 1, keys)
            defects.write_bytes(landing / rel, defects.csv_bytes(frame, encoding="utf-8", raw=raw, rng=rng))


def _hour_key(op: str, day: date, h: int) -> str:
    if op == "A":
        return f"{day:%Y-%m-%d} {h:02d}"
    if op == "B":
        return f"{day:%Y%m%d} {h}"
    return f"{day:%Y-%m-%d}T{h:02d}:00:00+08:00"


def _suppressed_text(count: np.ndarray) -> np.ndarray:
    return np.where(count < SUPPRESS_BELOW, "<5", count.astype(str)).astype(object)


def _frame(op: str, day: date, unit: np.ndarray, hour: np.ndarray, count: np.ndarray) -> pd.DataFrame:
    if op == "A":
        hours = np.array([f"{day:%Y-%m-%d} {h:02d}" for h in range(24)], dtype=object)
        return pd.DataFrame({"h3_index": unit, "stat_hour": hours[hour], "user_cnt": _suppressed_text(count)})
    if op == "B":
        masked = count < SUPPRESS_BELOW
        pop = pd.array(count, dtype="Int32")
        pop[masked] = pd.NA
        return pd.DataFrame(
            {
                "stat_date": f"{day:%Y%m%d}",
                "hour": hour.astype(np.int32),
                "grid_id": unit,
                "pop": pop,
                "is_masked": masked.astype(np.int32),
            }
        )
    slots = np.array([f"{day:%Y-%m-%d}T{h:02d}:00:00+08:00" for h in range(24)], dtype=object)
    return pd.DataFrame({"cell_id": unit, "time_slot": slots[hour], "users": _suppressed_text(count)})


def _write_parquet(path, frame: pd.DataFrame) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("stat_date", pa.string()),
            ("hour", pa.int32()),
            ("grid_id", pa.string()),
            ("pop", pa.int32()),
            ("is_masked", pa.int32()),
        ]
    )
    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="snappy")
