"""HR & social security's department database (社保), created with SQLAlchemy (SQLite by default).

Employed residents are insured at their employer; employers are units keyed by their USCC. The lake
reads it incrementally on ``updated_at``, which is TEXT 'YYYY-MM-DD HH:MM:SS' so the cursor compares
the same way in SQLite, PostgreSQL and MySQL, and is indexed because every incremental read filters on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from demo_city.manifest import CONTENT, Manifest

DB_FILE = "hrss/social_insurance.sqlite"
INSURANCE_TYPES = ["110", "310"]  # 养老, 医疗: every employee; 失业 (210) for most
UNIT_STATUS = (["正常", "暂停", "注销"], [0.95, 0.03, 0.02])
INSURED_STATUS = (["1", "2", "3"], [0.93, 0.04, 0.03])
CHUNK_ROWS = 200_000  # insured rows rendered and inserted at once

metadata = sa.MetaData()
si_unit = sa.Table(
    "si_unit",
    metadata,
    sa.Column("unit_id", sa.String(16), primary_key=True),
    sa.Column("uscc", sa.String(18), nullable=False),
    sa.Column("unit_name", sa.String(200), nullable=False),
    sa.Column("district_code", sa.String(6), nullable=False),
    sa.Column("status", sa.String(8), nullable=False),
    sa.Column("updated_at", sa.String(19), nullable=False, index=True),
)
si_insured = sa.Table(
    "si_insured",
    metadata,
    sa.Column("insured_id", sa.String(20), primary_key=True),
    sa.Column("id_number", sa.String(18), nullable=False),
    sa.Column("name", sa.String(50), nullable=False),
    sa.Column("unit_id", sa.String(16), sa.ForeignKey("si_unit.unit_id"), nullable=False),
    sa.Column("insurance_type", sa.String(3), nullable=False),
    sa.Column("status", sa.String(1), nullable=False),
    sa.Column("start_month", sa.String(6), nullable=False),
    sa.Column("monthly_base", sa.Numeric(12, 2), nullable=False),
    sa.Column("updated_at", sa.String(19), nullable=False, index=True),
)


def _timestamp_draws(rng: np.random.Generator, n: int, days: list[date]) -> tuple[np.ndarray, np.ndarray]:
    """(day index, second of the office day) per record: the draws of a timestamp, formatted later."""
    day = rng.integers(0, len(days), n).astype(np.int16)
    seconds = rng.integers(0, 11 * 3600, n).astype(np.int32)  # office hours 08:00-19:00
    return day, seconds


def _format_timestamps(day: np.ndarray, seconds: np.ndarray, days: list[date]) -> np.ndarray:
    start = pd.Timestamp(days[0]) + pd.Timedelta(hours=8)
    ts = (
        start
        + pd.to_timedelta(day.astype(np.int64), unit="D")
        + pd.to_timedelta(seconds.astype(np.int64), unit="s")
    )
    return ts.strftime("%Y-%m-%d %H:%M:%S").to_numpy(dtype=object)


def _timestamps(rng: np.random.Generator, n: int, days: list[date]) -> np.ndarray:
    return _format_timestamps(*_timestamp_draws(rng, n, days), days)


@dataclass
class InsuredRows:
    """The si_insured table as compact per-row draws; ``frame(start, stop)`` renders a slice of it.

    Ten million residents make some eleven million insured rows: as a frame of Python strings (and
    then tuples for the insert) that alone took many GB, so rows are rendered a chunk at a time.
    """

    residents: pd.DataFrame
    worker: np.ndarray  # row -> index into ``residents``
    unit_ids: np.ndarray  # row -> unit_id (object, shared strings)
    insurance_type: np.ndarray  # row -> index into INSURED_TYPES_SORTED
    status: np.ndarray  # row -> index into INSURED_STATUS[0]
    year: np.ndarray
    month: np.ndarray
    base: np.ndarray
    updated_day: np.ndarray
    updated_second: np.ndarray
    days: list[date]

    def __len__(self) -> int:
        return len(self.worker)

    def frame(self, start: int = 0, stop: int | None = None) -> pd.DataFrame:
        rows = slice(start, len(self) if stop is None else stop)
        who = self.worker[rows]
        numbers = range(rows.start + 1, rows.start + len(who) + 1)
        return pd.DataFrame(
            {
                "insured_id": [f"SI{i:012d}" for i in numbers],
                "id_number": self.residents["id_number"].iloc[who].to_numpy(dtype=object),
                "name": self.residents["name"].iloc[who].to_numpy(dtype=object),
                "unit_id": self.unit_ids[rows],
                "insurance_type": np.array(INSURED_TYPES_SORTED, dtype=object)[self.insurance_type[rows]],
                "status": np.array(INSURED_STATUS[0], dtype=object)[self.status[rows]],
                "start_month": [
                    f"{y:04d}{m:02d}" for y, m in zip(self.year[rows], self.month[rows], strict=True)
                ],
                "monthly_base": self.base[rows],
                "updated_at": _format_timestamps(
                    self.updated_day[rows], self.updated_second[rows], self.days
                ),
            }
        )


INSURED_TYPES_SORTED = sorted([*INSURANCE_TYPES, "210"])


def build_tables(
    rng: np.random.Generator, residents: pd.DataFrame, enterprises: pd.DataFrame, days: list[date]
) -> tuple[pd.DataFrame, InsuredRows]:
    """Units (employers) and insured rows: every employee has 110 and 310, most also 210 (unemployment).

    Rows are ordered by employer USCC, ID number and insurance type, as the department exports them.
    """
    workers = np.flatnonzero(residents["employed"].to_numpy())
    uscc = np.asarray(residents["employer_uscc"].iloc[workers], dtype=object)  # shared strings
    employer = enterprises.set_index("uscc").loc[pd.unique(uscc)]
    employer = employer.sort_values(["district_code"], kind="stable")
    units = pd.DataFrame(
        {
            "unit_id": [f"{d}{i:07d}" for i, d in enumerate(employer["district_code"], start=1)],
            "uscc": employer.index.to_numpy(dtype=object),
            "unit_name": employer["name"].to_numpy(dtype=object),
            "district_code": employer["district_code"].to_numpy(dtype=object),
            "status": rng.choice(UNIT_STATUS[0], len(employer), p=UNIT_STATUS[1]),
            "updated_at": _timestamps(rng, len(employer), days),
        }
    )
    with_unemployment = rng.random(len(workers)) < 0.85
    # Sort order: workers by (employer USCC, ID number), then each worker's types in text order.
    uscc_codes, uscc_values = pd.factorize(uscc, sort=True)
    id_rank = pd.factorize(residents["id_number"].iloc[workers], sort=True)[0]
    ranked = np.lexsort((id_rank, uscc_codes))  # rank -> worker position
    del id_rank
    unit_of = pd.Index(units["uscc"]).get_indexer(uscc_values)
    unit_by_worker = units["unit_id"].to_numpy(dtype=object)[unit_of[uscc_codes]]
    del uscc_codes
    rank_of = np.empty(len(workers), dtype=np.int64)
    rank_of[ranked] = np.arange(len(workers))
    del ranked
    position = np.arange(len(workers))
    has = {"110": position, "310": position, "210": position[with_unemployment]}
    row_rank = np.concatenate([rank_of[has[t]] for t in INSURED_TYPES_SORTED])
    row_type = np.concatenate(
        [np.full(len(has[t]), j, dtype=np.int8) for j, t in enumerate(INSURED_TYPES_SORTED)]
    )
    row_worker = np.concatenate([has[t] for t in INSURED_TYPES_SORTED])
    order = np.lexsort((row_type, row_rank))
    del row_rank, rank_of, has, position
    row_type, row_worker = row_type[order], row_worker[order]
    del order
    n = len(row_worker)

    end = pd.Timestamp(days[-1])
    birth_year = _years(residents["birth_date"].iloc[workers])
    first = np.maximum(birth_year[row_worker] + 18, 1995)
    years = first + (rng.random(n) * np.maximum(end.year - first, 0)).astype(int)
    del first
    months = rng.integers(1, 13, n)
    months = np.where(years == end.year, np.minimum(months, end.month), months)
    base = np.round(
        np.clip(rng.lognormal(np.log(7500), 0.45, n), 4462, 37302), 2
    )  # floor/ceiling of the base
    status = rng.choice(len(INSURED_STATUS[0]), n, p=INSURED_STATUS[1]).astype(np.int8)
    updated_day, updated_second = _timestamp_draws(rng, n, days)
    insured = InsuredRows(
        residents=residents,
        worker=workers[row_worker],
        unit_ids=unit_by_worker[row_worker],
        insurance_type=row_type,
        status=status,
        year=years.astype(np.int16),
        month=months.astype(np.int8),
        base=base,
        updated_day=updated_day,
        updated_second=updated_second,
        days=list(days),
    )
    return units, insured


def _years(dates: pd.Series) -> np.ndarray:
    """Year of each 'YYYY-MM-DD' (on a categorical, parsed once per category)."""
    if isinstance(dates.dtype, pd.CategoricalDtype):
        per_category = pd.to_datetime(pd.Series(dates.cat.categories)).dt.year.to_numpy()
        return per_category[dates.cat.codes.to_numpy()]
    return pd.to_datetime(dates).dt.year.to_numpy()


def write_database(
    landing: Path, units: pd.DataFrame, insured: InsuredRows | pd.DataFrame, chunk_rows: int | None = None
) -> str:
    """Create the database file afresh; indexes are built after the bulk load, which is much faster.

    Rows go in ``chunk_rows`` at a time, in one transaction: the same inserts in the same order as one
    big ``executemany``, so the same file, without holding every row as a tuple at once.
    """
    chunk_rows = chunk_rows or CHUNK_ROWS
    path = landing / DB_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as con:
            con.exec_driver_sql("PRAGMA synchronous = OFF")
            for table, rows in ((si_unit, units), (si_insured, insured)):
                con.execute(sa.schema.CreateTable(table))
                cols = [c.name for c in table.columns]
                insert = f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
                for start in range(0, len(rows), chunk_rows):
                    if isinstance(rows, InsuredRows):
                        frame = rows.frame(start, start + chunk_rows)
                    else:
                        frame = rows.iloc[start : start + chunk_rows]
                    con.exec_driver_sql(
                        insert, [tuple(r) for r in frame[cols].astype(object).to_numpy().tolist()]
                    )
            for table in (si_unit, si_insured):
                for index in table.indexes:
                    index.create(con)
    finally:
        engine.dispose()
    return DB_FILE


def record_missing_employers(units: pd.DataFrame, enterprises: pd.DataFrame, manifest: Manifest) -> None:
    """Units whose USCC the market-regulation registry does not deliver (hidden in ``enterprises``)."""
    hidden = set(enterprises.loc[~enterprises["in_entity_registry"], "uscc"])
    gone = units[units["uscc"].isin(hidden)]
    manifest.add(
        "si_unit",
        "db:si_unit",
        CONTENT,
        "employer_not_in_entity_registry",
        None,
        gone["unit_id"],
        "uscc=" + gone["uscc"],
    )
