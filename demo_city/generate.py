"""Generate the demo city: every department and operator delivery, the hotline store and the ground truth.

``generate_demo_city(DemoConfig(...))`` is the one entry point. The city is configuration — a list of
current county codes, possibly across provinces — and everything is derived from one seed, stream by
stream, so the same configuration always gives the same bytes.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from citybrain import settings
from citybrain.reference import boundaries, divisions
from demo_city import (
    defects,
    egov,
    entities,
    facilities,
    hotline,
    insurance_db,
    od,
    operators,
    population,
    redistricting,
    registry,
    ticket_text,
)
from demo_city.manifest import Manifest
from demo_city.rngs import rng_for

DEFAULT_COUNTIES: list[str] = divisions.default_counties()
TIMEZONE = ZoneInfo("Asia/Shanghai")


@dataclass
class DemoConfig:
    counties: list[str] = field(default_factory=lambda: list(DEFAULT_COUNTIES))
    residents: int = 200_000
    days: int = 7
    end_date: date | None = None  # None: yesterday in Asia/Shanghai
    seed: int = 20261123
    defect_rate: float = 0.02
    landing: Path | None = None  # None: settings.landing_dir()
    demo_dir: Path | None = None  # None: settings.demo_dir()

    def resolved(self) -> DemoConfig:
        """A copy with defaults filled in and values checked."""
        if self.residents < 100:
            raise ValueError(f"residents must be at least 100, got {self.residents}")
        if self.days < 1:
            raise ValueError(f"days must be at least 1, got {self.days}")
        if not 0 <= self.defect_rate < 0.5:
            raise ValueError(f"defect_rate must be in [0, 0.5), got {self.defect_rate}")
        end = self.end_date or (datetime.now(TIMEZONE).date() - timedelta(days=1))
        return DemoConfig(
            counties=[str(c).strip() for c in self.counties],
            residents=int(self.residents),
            days=int(self.days),
            end_date=end,
            seed=int(self.seed),
            defect_rate=float(self.defect_rate),
            landing=Path(self.landing or settings.landing_dir()).resolve(),
            demo_dir=Path(self.demo_dir or settings.demo_dir()).resolve(),
        )

    @property
    def dates(self) -> list[date]:
        assert self.end_date is not None
        return [self.end_date - timedelta(days=self.days - 1 - i) for i in range(self.days)]


@dataclass
class GenerationSummary:
    config: DemoConfig
    landing: Path
    demo_dir: Path
    files: list[str]  # delivered files, relative to the landing zone
    rows_written: dict[str, int]
    defects: int  # rows in ground_truth/defects.csv
    seconds: float

    @property
    def hotline_store(self) -> Path:
        return self.demo_dir / "hotline_store"

    @property
    def ground_truth(self) -> Path:
        return self.demo_dir / "ground_truth"


def generate_demo_city(config: DemoConfig) -> GenerationSummary:
    started = time.perf_counter()
    cfg = config.resolved()
    counties = boundaries.located_counties(cfg.counties)  # raises ValueError on unknown/retired codes
    stale = redistricting.stale_codes(counties)  # old codes from the official record, not the crosswalk
    orphans = redistricting.codes_without_successor(counties)
    landing, demo = cfg.landing, cfg.demo_dir
    days = cfg.dates
    end = cfg.end_date
    rate = cfg.defect_rate
    manifest = Manifest()

    def rng(*stream: str) -> np.random.Generator:
        return rng_for(cfg.seed, *stream)

    # The people and firms everything else is cut from.
    w = rng("counties").lognormal(0.0, 0.45, len(counties))
    county_weights = w / w.sum()
    shares = operators.market_shares(rng("market"), counties)
    n_firms = max(3 * len(counties), cfg.residents // 40)
    firms = entities.build_enterprises(rng("enterprises"), counties, county_weights, n_firms, end)
    people = population.build_residents(
        rng("residents"),
        counties,
        county_weights,
        cfg.residents,
        end,
        shares,
        firms,
        _origin_codes(rng("origins"), counties),
    )
    _hide_some_employers(rng("si", "hidden"), firms, people, rate)
    _release_memory()

    files = [
        registry.write_household_registry(
            # Each night's export has its own defects: the registry delivered again differs a little (its
            # bytes, and the records a defect keeps out of the pool) while its people stay the same.
            landing,
            people,
            stale,
            orphans,
            end,
            rate,
            rng("registry", end.isoformat()),
            manifest,
        ),
        entities.write_legal_entities(landing, firms, stale, end, rate, rng("entities", "defects"), manifest),
    ]
    _release_memory()
    medical = facilities.build_medical(rng("medical"), counties, people, end)
    files.append(
        facilities.write_medical(landing, medical, counties, end, rate, rng("medical", "defects"), manifest)
    )
    schools = facilities.build_schools(rng("schools"), counties, people, end)
    files.append(facilities.write_schools(landing, schools, end, rate, rng("schools", "defects"), manifest))

    units, insured = insurance_db.build_tables(rng("si"), people, firms, days)
    files.append(insurance_db.write_database(landing, units, insured))
    insurance_db.record_missing_employers(units, firms, manifest)
    manifest.rows_written["db:si_unit"] = len(units)
    manifest.rows_written["db:si_insured"] = len(insured)
    del units, insured
    _release_memory()

    versions = hotline.build_versions(
        rng("hotline"), people, counties, days, max(20, cfg.residents // 2000), rate, manifest,
        labels_path=demo / "ground_truth" / ticket_text.CORPUS_FILE,
    )  # fmt: skip
    hotline.write_store(demo / "hotline_store", versions)
    manifest.rows_written["api:hotline_tickets"] = int(versions["ticket_id"].nunique())
    del versions

    for day in days:
        apps = egov.build_day(rng("egov", day.isoformat()), day, max(50, cfg.residents // 200), people, firms)
        files.append(
            egov.write_day(
                landing, apps, day, counties, rate, rng("egov", "defects", day.isoformat()), manifest
            )
        )

    files.append(operators.write_market_share(landing, shares, end, manifest))
    cells = operators.build_cells(rng("cells"), people)
    files.append(operators.write_cells(landing, cells, manifest))
    shutil.rmtree(demo / "redelivery", ignore_errors=True)
    operators.write_presence(
        landing, demo, people, cells, days, rate, lambda op: rng("presence", op), manifest
    )
    _release_memory()
    od.write_od(landing, people, counties, days, lambda op: rng("od", op), manifest)
    files += [operators.presence_file(op, d) for op in "ABC" for d in days]
    files += [od.od_file(op, d) for op in "ABC" for d in days]

    truth = demo / "ground_truth"
    _write_truth(
        truth,
        counties,
        pd.concat([stale, orphans.assign(status="retired")]),
        people,
        firms,
        medical,
        schools,
        cells,
        shares,
    )
    seconds = time.perf_counter() - started
    summary_config = {k: (str(v) if isinstance(v, Path | date) else v) for k, v in asdict(cfg).items()}
    manifest.write(truth, summary_config, seconds)
    return GenerationSummary(
        config=cfg,
        landing=landing,
        demo_dir=demo,
        files=sorted(files),
        rows_written=dict(manifest.rows_written),
        defects=len(manifest.table()),
        seconds=seconds,
    )


def _release_memory() -> None:
    """Give memory freed by a phase back to the OS before the next one.

    glibc keeps freed heap pages (numpy's large temporaries land there once its mmap threshold has
    grown), and Arrow's pool keeps its own; at ten million residents that is GBs of RSS held for
    nothing, and the next phase's temporaries then come on top of it.
    """
    gc.collect()
    pa.default_memory_pool().release_unused()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim this way
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _origin_codes(rng: np.random.Generator, counties: pd.DataFrame) -> list[str]:
    """Where residents not born locally were first registered: the same provinces, and anywhere."""
    current = np.array(divisions.all_current_codes(), dtype=object)
    configured = set(counties["code"])
    provinces = {p[:2] for p in counties["province_code"]}
    near = [c for c in current if c[:2] in provinces and c not in configured]
    far = [c for c in current if c[:2] not in provinces]
    pick_near = list(rng.choice(near, min(20, len(near)), replace=False)) if near else []
    pick_far = list(rng.choice(far, min(20, len(far)), replace=False)) if far else []
    return sorted(pick_near + pick_far) or sorted(configured)


def _hide_some_employers(
    rng: np.random.Generator, firms: pd.DataFrame, people: pd.DataFrame, rate: float
) -> None:
    """Employers HR knows but market regulation's registry does not deliver (a content defect of si_unit)."""
    used = np.asarray(people["employer_uscc"].dropna().unique(), dtype=object)
    employers = np.flatnonzero(firms["uscc"].isin(used).to_numpy())
    k = defects.allocate(len(employers), ["employer_not_in_entity_registry"], rate)[
        "employer_not_in_entity_registry"
    ]
    hidden = rng.choice(employers, min(k, len(employers)), replace=False) if k else []
    firms.loc[firms.index[hidden], "in_entity_registry"] = False


def _write_truth(truth: Path, counties, stale, people, firms, medical, schools, cells, shares) -> None:
    truth.mkdir(parents=True, exist_ok=True)
    _division_truth(counties, stale).to_csv(truth / "divisions.csv", index=False, lineterminator="\n")
    _write_residents(truth / "residents.parquet", people)
    firms.to_parquet(truth / "enterprises.parquet", index=False)
    medical.to_parquet(truth / "medical_facilities.parquet", index=False)
    schools.to_parquet(truth / "schools.parquet", index=False)
    cells.to_parquet(truth / "operator_c_cells.parquet", index=False)
    shares.to_parquet(truth / "market_share.parquet", index=False)


def _division_truth(counties: pd.DataFrame, stale: pd.DataFrame) -> pd.DataFrame:
    """divisions.csv: the configured counties, then every old code the demo may deliver with the current
    county it stands for (and the township the record then names; no county for a retired code without
    recorded successor) - from the official record of changes."""
    current = counties.assign(status="current", maps_to=counties["code"], township="", year=pd.NA, kind="")
    columns = ["code", "name", "status", "maps_to", "township", "year", "kind"]
    geo = ["city_code", "city_name", "province_code", "province_name", "lng", "lat", "centroid_source"]
    return pd.concat([current[columns + geo], stale[columns]], ignore_index=True)


TRUTH_ROW_GROUP = 1024 * 1024  # pyarrow's default row-group size: the file equals one ``to_parquet``


def _write_residents(path: Path, people: pd.DataFrame) -> None:
    """residents.parquet in the plain dtypes, one row group at a time (not a second full copy)."""
    writer = None
    try:
        for start in range(0, len(people), TRUTH_ROW_GROUP):
            chunk = population.truth_frame(people.iloc[start : start + TRUTH_ROW_GROUP])
            table = pa.Table.from_pandas(chunk, preserve_index=False)
            del chunk
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema, compression="snappy")
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
