"""Operators are catalog entries: a city with a fourth operator (中国广电 CBN) or with only two operator feeds
needs catalog entries and a staging file per feed, not edits to the operator models.

Each case copies the dbt project, applies what a data engineer would (the catalog's feeds, a staging file and
a raw source per new feed, the var block the reference step asks for) and builds the operator models with dbt on
a tiny hand-written warehouse. Expected rows are written out by hand from the deliveries (sums, the '<5' midpoint
2, the market shares) and the H3 library, never read back from the pipeline."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import h3
import yaml

from citybrain.catalog import parse_catalog
from citybrain.reference import boundaries
from citybrain.reference.feeds import feed_table
from citybrain.reference.operators import declaration_problems, operator_feeds_var, operator_table
from citybrain.settings import REPO_ROOT

RAW = yaml.safe_load((REPO_ROOT / "catalog" / "sources.yaml").read_text(encoding="utf-8"))
DAY = "2026-11-20"
LINEAGE = "'f.csv' as _source_file, 'sha' as _file_sha256, {row} as _row_number, 'b1' as _batch_id, " \
    "timestamptz '2026-11-21 01:00:00+00' as _loaded_at"  # fmt: skip

CBN_FEEDS = [
    {
        "id": "operator_d_od",
        "title": {"zh": "广电出行OD", "en": "Operator D district OD flows"},
        "provider": "CBN",
        "operator_feed": {"kind": "od", "operator": "CBN"},
        "delivery": {"kind": "csv", "path": "operators/cbn/{date:%Y%m%d}/od.csv", "encoding": "utf-8"},
        "cadence": "daily",
        "partitioning": "daily",
        "key": ["o", "d"],
        "columns": [
            {"name": c, "type": "varchar", "classification": "open", "description": "广电OD"}
            for c in ("o", "d", "n")
        ],
    },
    {
        "id": "operator_d_presence",
        "title": {"zh": "广电信令人口(点位)", "en": "Operator D presence per WGS-84 point"},
        "provider": "CBN",
        "operator_feed": {"kind": "presence", "operator": "CBN", "unit": "wgs84_point"},
        "delivery": {"kind": "csv", "path": "operators/cbn/{date:%Y%m%d}/presence.csv", "encoding": "utf-8"},
        "cadence": "daily",
        "partitioning": "daily",
        "key": ["spot", "hour"],
        "columns": [
            {"name": c, "type": "varchar", "classification": "open", "description": "广电驻留"}
            for c in ("spot", "hour", "lng", "lat", "users")
        ],
    },
]
CBN_STAGING = {
    "stg_operator_d_od.sql": "{{ operator_od_staging('operator_d_od', origin='o', destination='d', trips='n') }}\n",
    "stg_operator_d_presence.sql": """select
    {{ operator_code('operator_d_presence') }} as operator,
    nullif(trim(spot), '') as unit_id,
    {{ shanghai_timestamp("trim(hour) || ':00:00'") }} as hour_start,
    try_cast(substr(trim(hour), 1, 10) as date) as stat_date,
    {{ count_or_null('users') }} as user_count,
    coalesce({{ suppressed_flag('users') }}, false) as is_suppressed,
    try_cast(lng as double) as center_lng,
    try_cast(lat as double) as center_lat,
    cast(_partition as date) as partition_date,
    _source_file, _file_sha256, _row_number, _batch_id, _loaded_at
from {{ source('raw', 'operator_d_presence') }}
""",
}
# A point in 上城区 (WGS-84) delivered by CBN, and an H3 cell delivered by CMCC.
CBN_POINT = (120.1700, 30.2500)
CMCC_CELL = h3.latlng_to_cell(30.2600, 120.1800, 8)


def _catalog(raw: dict):
    return parse_catalog(raw, "test catalog")


def _project(tmp: Path, catalog, staging: dict[str, str], feeds: list[dict]) -> Path:
    """A copy of the dbt project with a staging file and a raw source per new feed and the catalog's var."""
    project = tmp / "dbt_project"
    shutil.copytree(
        REPO_ROOT / "dbt_project", project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages")
    )
    for name, sql in staging.items():
        (project / "models" / "staging" / "spatial" / name).write_text(sql, encoding="utf-8")
    sources_file = project / "models" / "staging" / "_sources.yml"
    sources = yaml.safe_load(sources_file.read_text(encoding="utf-8"))
    raw_source = next(s for s in sources["sources"] if s["name"] == "raw")
    raw_source["tables"] += [{"name": f["id"], "description": f["title"]["zh"]} for f in feeds]
    sources_file.write_text(yaml.safe_dump(sources, allow_unicode=True, sort_keys=False), encoding="utf-8")
    project_file = project / "dbt_project.yml"
    config = yaml.safe_load(project_file.read_text(encoding="utf-8"))
    config["vars"]["operator_feeds"] = operator_feeds_var(catalog)
    project_file.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    assert declaration_problems(catalog, project_file) == []
    return project


def _warehouse(
    path: Path, catalog, od: dict[str, list[tuple]], presence: dict[str, str], shares: list[tuple]
):
    """raw tables of the operator feeds (every value text) and the reference tables the models read."""
    con = duckdb.connect(str(path))
    con.execute("create schema raw; create schema reference")
    for feed in catalog.feeds:
        if not feed.operator_feed:
            continue
        cols = ", ".join(f"{c} varchar" for c in feed.column_names)
        con.execute(
            f"create table raw.{feed.id} ({cols}, _partition varchar, _source_file varchar, _file_sha256 varchar, "
            "_row_number bigint, _batch_id varchar, _loaded_at timestamptz)"
        )
    for feed_id, rows in od.items():
        for i, row in enumerate(rows, 1):
            values = ", ".join(f"'{v}'" for v in row)
            con.execute(f"insert into raw.{feed_id} select {values}, '{DAY}', {LINEAGE.format(row=i)}")
    for feed_id, select in presence.items():
        con.execute(f"insert into raw.{feed_id} select {select}, '{DAY}', {LINEAGE.format(row=1)}")
    for i, (district, operator, share) in enumerate(shares, 1):
        con.execute(
            f"insert into raw.operator_market_share select '{district}', '{operator}', '{share}', '2026-11', null, "
            + LINEAGE.format(row=i)
        )
    con.execute(
        "create table reference.division_crosswalk as select * from (values "
        "('330102', '上城区', 'current', '330102', 'self', 1983, null, 'test'), "
        "('330105', '拱墅区', 'current', '330105', 'self', 1983, null, 'test'), "
        "('330103', '下城区', 'retired', '330105', 'merge', 1983, 2021, 'test')) "
        "as t(code, name, status, maps_to, mapping, first_year, last_year, source)"
    )
    con.execute(
        "create table reference.city_counties as select * from (values "
        "('330102', '上城区', '330100', '杭州市', '330000', '浙江省', 120.17, 30.25, 'test', '杭州', 'Hangzhou'), "
        "('330105', '拱墅区', '330100', '杭州市', '330000', '浙江省', 120.14, 30.32, 'test', '杭州', 'Hangzhou')) "
        "as t(code, name, city_code, city_name, province_code, province_name, lng, lat, centroid_source, "
        "city_name_zh, city_name_en)"
    )
    _, county_cells = boundaries.county_tables(["330102", "330105"])
    tables = {
        "feeds": feed_table(catalog),
        "operators": operator_table(catalog),
        "county_cells": county_cells,
    }
    for name, frame in tables.items():
        con.register("frame", frame)
        con.execute(f"create table reference.{name} as select * from frame")
        con.unregister("frame")
    con.close()


def _build(project: Path, warehouse: Path, tmp: Path) -> tuple[dict, duckdb.DuckDBPyConnection]:
    target = tmp / "target"
    dbt = Path(sys.executable).with_name("dbt")
    proc = subprocess.run(
        [str(dbt), "build", "--profiles-dir", ".", "--target-path", str(target), "--log-path", str(target),
         "--indirect-selection", "cautious", "--exclude-resource-type", "unit_test",
         "--select", "+int_od__operator_trips", "+int_spatial__operator_units"],
        cwd=project, capture_output=True, text=True,
        env={**os.environ, "CITYBRAIN_WAREHOUSE": str(warehouse), "CITYBRAIN_HOME": str(tmp)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
    manifest = json.loads((target / "manifest.json").read_text(encoding="utf-8"))
    return manifest, duckdb.connect(str(warehouse), read_only=True)


def _staging_parents(manifest: dict, model: str) -> set[str]:
    node = manifest["nodes"][f"model.citybrain.{model}"]
    return {p.split(".")[-1] for p in node["depends_on"]["nodes"] if ".stg_operator_" in p}


def _trips(con) -> dict[str, tuple]:
    rows = con.execute(
        "select operator, reported_trips, suppressed_pairs, trips, market_share from intermediate.int_od__operator_trips"
        " where origin_district_code = '330102' and destination_district_code = '330105'"
    ).fetchall()
    return {r[0]: tuple(r[1:]) for r in rows}


OD_ROWS = {  # per feed: rows in its own columns (origin, destination, trips); 330103 was merged into 330105
    "operator_a_od": [("330102", "330105", "40"), ("330102", "330103", "<5")],
    "operator_b_od": [("20261120", "330102", "330105", "12")],  # B delivers stat_date first
    "operator_c_od": [("330102", "330105", "<5")],
    "operator_d_od": [("330102", "330105", "7"), ("330102", "330103", "3")],
}


def test_a_fourth_operator_is_catalog_entries_and_staging_files(tmp_path):
    raw = copy.deepcopy(RAW)
    raw["providers"]["CBN"] = {"name": "中国广电", "en": "China Broadnet"}
    # CBN's feeds added; C's cell-site presence left out here (the spatial tests cover placing cells)
    raw["feeds"] = [f for f in raw["feeds"] if f["id"] not in ("operator_c_presence", "operator_c_cells")]
    raw["feeds"] += CBN_FEEDS
    catalog = _catalog(raw)
    project = _project(tmp_path, catalog, CBN_STAGING, CBN_FEEDS)
    shares = [
        ("330102", "CMCC", 0.5),
        ("330102", "CUCC", 0.2),
        ("330102", "CTCC", 0.2),
        ("330102", "CBN", 0.1),
    ]
    presence = {
        "operator_a_presence": f"'{CMCC_CELL}', '{DAY} 03', '25'",
        "operator_d_presence": f"'spot-1', '{DAY} 03', '{CBN_POINT[0]}', '{CBN_POINT[1]}', '9'",
    }
    _warehouse(tmp_path / "w.duckdb", catalog, OD_ROWS, presence, shares)
    manifest, con = _build(project, tmp_path / "w.duckdb", tmp_path)

    assert _staging_parents(manifest, "int_od__operator_trips") == {
        "stg_operator_a_od", "stg_operator_b_od", "stg_operator_c_od", "stg_operator_d_od"
    }  # fmt: skip
    assert _staging_parents(manifest, "int_presence__operator_estimates") == {
        "stg_operator_a_presence", "stg_operator_b_presence", "stg_operator_d_presence"
    }  # fmt: skip
    # (reported, '<5' rows, reported + 2 per '<5' row, share): 330103 counts as its successor 330105
    assert _trips(con) == {
        "CMCC": (40, 1, 42, 0.5),
        "CUCC": (12, 0, 12, 0.2),
        "CTCC": (0, 1, 2, 0.2),
        "CBN": (10, 0, 10, 0.1),
    }
    units = {
        r[0]: r[1:]
        for r in con.execute(
            "select operator, unit_id, grid_id, problem from intermediate.int_spatial__operator_units"
        ).fetchall()
    }
    assert units["CMCC"] == (CMCC_CELL, CMCC_CELL, None)
    assert units["CBN"] == ("spot-1", h3.latlng_to_cell(CBN_POINT[1], CBN_POINT[0], 8), None)
    # the market share of the newly declared operator is accepted (the demo catalog's list was CMCC/CUCC/CTCC)
    kept = {
        r[0] for r in con.execute("select operator from intermediate.int_spatial__market_share").fetchall()
    }
    assert kept == {"CMCC", "CUCC", "CTCC", "CBN"}
    con.close()


def test_a_city_with_two_operator_feeds_builds(tmp_path):
    raw = copy.deepcopy(RAW)
    raw["feeds"] = [f for f in raw["feeds"] if not f["id"].startswith("operator_c_")]
    catalog = _catalog(raw)
    project = _project(tmp_path, catalog, {}, [])
    od = {k: v for k, v in OD_ROWS.items() if k in ("operator_a_od", "operator_b_od")}
    presence = {"operator_a_presence": f"'{CMCC_CELL}', '{DAY} 03', '25'"}
    _warehouse(
        tmp_path / "w.duckdb", catalog, od, presence, [("330102", "CMCC", 0.6), ("330102", "CUCC", 0.4)]
    )
    manifest, con = _build(project, tmp_path / "w.duckdb", tmp_path)

    assert _staging_parents(manifest, "int_od__operator_trips") == {"stg_operator_a_od", "stg_operator_b_od"}
    assert _staging_parents(manifest, "int_spatial__operator_units") == {
        "stg_operator_a_presence", "stg_operator_b_presence"
    }  # fmt: skip
    assert _trips(con) == {"CMCC": (40, 1, 42, 0.6), "CUCC": (12, 0, 12, 0.4)}
    con.close()


def test_the_reference_step_refuses_a_dbt_var_the_catalog_does_not_declare(tmp_path):
    raw = copy.deepcopy(RAW)
    raw["feeds"] = [f for f in raw["feeds"] if f["id"] != "operator_b_od"]
    problems = declaration_problems(_catalog(raw), REPO_ROOT / "dbt_project" / "dbt_project.yml")
    assert len(problems) == 1 and "operator_feeds.od" in problems[0], problems


def test_the_project_declares_what_the_catalog_declares():
    from citybrain.catalog import load_catalog

    assert declaration_problems(load_catalog(), REPO_ROOT / "dbt_project" / "dbt_project.yml") == []
