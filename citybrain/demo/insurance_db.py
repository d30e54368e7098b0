"""HR & social security's department database (社保), created with SQLAlchemy (SQLite by default).

Employed residents are insured at their employer; employers are units keyed by their USCC. The lake
reads it incrementally on ``updated_at``, which is TEXT 'YYYY-MM-DD HH:MM:SS' so the cursor compares
the same way in SQLite, PostgreSQL and MySQL, and is indexed because every incremental read filters on it.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from citybrain.demo.manifest import CONTENT, Manifest

DB_FILE = "hrss/social_insurance.sqlite"
INSURANCE_TYPES = ["110", "310"]  # 养老, 医疗: every employee; 失业 (210) for most
UNIT_STATUS = (["正常", "暂停", "注销"], [0.95, 0.03, 0.02])
INSURED_STATUS = (["1", "2", "3"], [0.93, 0.04, 0.03])

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


def _timestamps(rng: np.random.Generator, n: int, days: list[date]) -> np.ndarray:
    start = pd.Timestamp(days[0]) + pd.Timedelta(hours=8)
    day = rng.integers(0, len(days), n)
    seconds = rng.integers(0, 11 * 3600, n)  # office hours 08:00-19:00
    ts = start + pd.to_timedelta(day, unit="D") + pd.to_timedelta(seconds, unit="s")
    return ts.strftime("%Y-%m-%d %H:%M:%S").to_numpy(dtype=object)


def build_tables(
    rng: np.random.Generator, residents: pd.DataFrame, enterprises: pd.DataFrame, days: list[date]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    workers = residents[residents["employed"]]
    employer = enterprises.set_index("uscc").loc[workers["employer_uscc"].unique()]
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
    unit_of = dict(zip(units["uscc"], units["unit_id"], strict=True))
    w = workers.reset_index(drop=True)
    with_unemployment = rng.random(len(w)) < 0.85
    parts = []
    end = pd.Timestamp(days[-1])
    for t in [*INSURANCE_TYPES, "210"]:
        sub = w if t != "210" else w[with_unemployment]
        parts.append(sub.assign(insurance_type=t))
    ins = pd.concat(parts, ignore_index=True).sort_values(
        ["employer_uscc", "id_number", "insurance_type"], kind="stable", ignore_index=True
    )
    n = len(ins)
    first = np.maximum(pd.to_datetime(ins["birth_date"]).dt.year.to_numpy() + 18, 1995)
    years = first + (rng.random(n) * np.maximum(end.year - first, 0)).astype(int)
    months = rng.integers(1, 13, n)
    months = np.where(years == end.year, np.minimum(months, end.month), months)
    base = np.round(
        np.clip(rng.lognormal(np.log(7500), 0.45, n), 4462, 37302), 2
    )  # floor/ceiling of the base
    insured = pd.DataFrame(
        {
            "insured_id": [f"SI{i:012d}" for i in range(1, n + 1)],
            "id_number": ins["id_number"].to_numpy(dtype=object),
            "name": ins["name"].to_numpy(dtype=object),
            "unit_id": ins["employer_uscc"].map(unit_of).to_numpy(dtype=object),
            "insurance_type": ins["insurance_type"].to_numpy(dtype=object),
            "status": rng.choice(INSURED_STATUS[0], n, p=INSURED_STATUS[1]),
            "start_month": [f"{y:04d}{m:02d}" for y, m in zip(years, months, strict=True)],
            "monthly_base": base,
            "updated_at": _timestamps(rng, n, days),
        }
    )
    return units, insured


def write_database(landing: Path, units: pd.DataFrame, insured: pd.DataFrame) -> str:
    """Create the database file afresh; indexes are built after the bulk load, which is much faster."""
    path = landing / DB_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as con:
            con.exec_driver_sql("PRAGMA synchronous = OFF")
            for table, frame in ((si_unit, units), (si_insured, insured)):
                con.execute(sa.schema.CreateTable(table))
                cols = [c.name for c in table.columns]
                insert = f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
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
