"""The demo generator's memory stays bounded: big outputs are written in chunks, the residents are compact.

Ten million residents (the benchmark's scale) only fit on one machine because the household registry,
the insurance rows, the operators' per-point conversions and the residents' ground truth are produced a
chunk at a time, and because the residents frame holds no Python string per person. These checks
shrink every chunk to a few rows and require the same files as with the default chunk sizes, and that
the chunks really were that small; they assert structure, not wall-clock time or RSS.
"""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from demo_city import defects, generate, insurance_db, operators
from demo_city.generate import DemoConfig, generate_demo_city

END = date(2026, 11, 20)
SMALL = 7  # rows per chunk in the chunked run
COMPACT = {  # residents columns that repeat values: categoricals, not text per resident
    "id_address_code", "sex", "birth_date", "ethnicity", "household_id", "home_county", "address",
    "registered_on", "operator", "employer_uscc", "work_county",
}  # fmt: skip


def _generate(root: Path):
    return generate_demo_city(
        DemoConfig(
            counties=["330102", "330106", "330110"],
            residents=1200,
            days=2,
            end_date=END,
            landing=root / "landing",
            demo_dir=root / "demo",
        )
    )


def _digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.suffix != ".parquet" and p.name != "summary.json"
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same city generated with default chunk sizes and with every chunk ``SMALL`` rows."""
    plain = _generate(tmp_path_factory.mktemp("plain"))
    sizes: dict[str, list[int]] = {"registry": [], "insured": []}
    plain_lines, insured_frame = defects._plain_lines, insurance_db.InsuredRows.frame

    def spy_lines(frame):
        if "hukou_district" in frame.columns:  # the household registry, the one CSV that grows with residents
            sizes["registry"].append(len(frame))
        return plain_lines(frame)

    def spy_insured(self, start=0, stop=None):
        frame = insured_frame(self, start, stop)
        sizes["insured"].append(len(frame))
        return frame

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(defects, "CHUNK_ROWS", SMALL)
        mp.setattr(defects, "_plain_lines", spy_lines)
        mp.setattr(insurance_db, "CHUNK_ROWS", SMALL)
        mp.setattr(insurance_db.InsuredRows, "frame", spy_insured)
        mp.setattr(operators, "POINT_CHUNK", SMALL)
        mp.setattr(generate, "TRUTH_ROW_GROUP", 500)
        chunked = _generate(tmp_path_factory.mktemp("chunked"))
    return plain, chunked, sizes


def test_chunked_generation_writes_the_same_files(runs):
    plain, chunked, _ = runs
    assert _digests(chunked.landing) == _digests(plain.landing)
    assert _digests(chunked.demo_dir) == _digests(plain.demo_dir)  # hotline store, redelivery, defects.csv
    for name in ("residents", "enterprises", "operator_c_cells"):
        a = pd.read_parquet(plain.ground_truth / f"{name}.parquet")
        b = pd.read_parquet(chunked.ground_truth / f"{name}.parquet")
        pd.testing.assert_frame_equal(a, b)


def test_big_outputs_are_written_a_chunk_at_a_time(runs):
    plain, chunked, sizes = runs
    registry = plain.rows_written[f"public_security/household_registry_{END:%Y%m%d}.csv"]
    assert registry > 1000 and sum(sizes["registry"]) == registry and max(sizes["registry"]) <= SMALL
    assert sum(sizes["insured"]) == plain.rows_written["db:si_insured"] and max(sizes["insured"]) <= SMALL
    assert pq.ParquetFile(chunked.ground_truth / "residents.parquet").num_row_groups == 3  # 1200 / 500
    assert pq.ParquetFile(plain.ground_truth / "residents.parquet").num_row_groups == 1


def test_residents_frame_holds_no_text_per_resident(tmp_path):
    """Repeated values are categoricals (with no cached lookup); nothing is an object column."""
    from citybrain.reference import divisions
    from demo_city import entities, population
    from demo_city.rngs import rng_for

    counties = divisions.current_counties(["330102", "330106"])
    weights = [0.5, 0.5]
    shares = operators.market_shares(rng_for(1, "market"), counties)
    firms = entities.build_enterprises(rng_for(1, "firms"), counties, weights, 30, END)
    people = population.build_residents(
        rng_for(1, "people"), counties, weights, 500, END, shares, firms, ["110101"]
    )
    kinds = {c: people[c].dtype for c in people.columns}
    assert not [c for c, t in kinds.items() if isinstance(t, np.dtype) and t.kind == "O"]
    assert {c for c, t in kinds.items() if isinstance(t, pd.CategoricalDtype)} == COMPACT
    assert all("_engine" not in people[c].cat.categories._cache for c in COMPACT)
    plain = population.truth_frame(people)
    assert not any(isinstance(t, pd.CategoricalDtype) for t in plain.dtypes)
    assert plain["age"].dtype == "int64" and plain["home_county"].tolist() == people["home_county"].tolist()
