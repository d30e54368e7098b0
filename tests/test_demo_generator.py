"""The demo-city generator: deliveries match the catalog, the manifest matches what was injected.

One small city (2,000 residents, 2 days) is generated once per module; the checks re-derive every
recorded defect from the delivered bytes, so the manifest can be trusted by the ingestion tests.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import sqlite3
from datetime import date, timedelta
from pathlib import Path

import h3
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from openpyxl import load_workbook
from stdnum.cn import ric, uscc

from citybrain import settings
from citybrain.ingest import reasons
from citybrain.reference import divisions
from demo_city.generate import DEFAULT_COUNTIES, DemoConfig, generate_demo_city

END = date(2026, 11, 20)
DAYS = [END - timedelta(days=1), END]
FULLWIDTH_BACK = str.maketrans({chr(0xFF10 + i): str(i) for i in range(10)})


def _generate(root: Path, **kw):
    cfg = DemoConfig(residents=2000, days=2, end_date=END, landing=root / "landing", demo_dir=root / "demo")
    for k, v in kw.items():
        setattr(cfg, k, v)
    return generate_demo_city(cfg)


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    return _generate(tmp_path_factory.mktemp("city"))


@pytest.fixture(scope="module")
def catalog() -> dict:
    return yaml.safe_load((settings.REPO_ROOT / "catalog" / "sources.yaml").read_text("utf-8"))


@pytest.fixture(scope="module")
def manifest(city) -> pd.DataFrame:
    return pd.read_csv(city.ground_truth / "defects.csv", dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def truth(city) -> dict[str, pd.DataFrame]:
    gt = city.ground_truth
    return {
        "residents": pd.read_parquet(gt / "residents.parquet"),
        "enterprises": pd.read_parquet(gt / "enterprises.parquet"),
        "divisions": pd.read_csv(gt / "divisions.csv", dtype=str),
    }


def _feed(catalog: dict, feed_id: str) -> dict:
    return next(f for f in catalog["feeds"] if f["id"] == feed_id)


def _files(city, catalog: dict, feed_id: str) -> list[Path]:
    """A feed's delivered files, found by formatting and globbing its catalog path."""
    feed = _feed(catalog, feed_id)
    pattern = feed["delivery"]["path"]
    if feed["partitioning"] == "daily":
        return [city.landing / pattern.format(date=d) for d in DAYS]
    return sorted(city.landing.glob(pattern))


def _rel(city, path: Path) -> str:
    return path.relative_to(city.landing).as_posix()


def _defects(manifest: pd.DataFrame, file: str, defect: str) -> pd.DataFrame:
    return manifest[(manifest["file"] == file) & (manifest["defect"] == defect)]


def _rows(manifest: pd.DataFrame, file: str, defect: str) -> set[int]:
    return {int(r) for r in _defects(manifest, file, defect)["row_number"]}


def _csv_records(path: Path, encoding: str) -> tuple[list[str], list[list[str]]]:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    text = data.decode(encoding, errors="surrogateescape")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    return rows[0], rows[1:]


FILE_FEEDS = [
    "household_registry", "legal_entities", "medical_facilities", "schools", "egov_applications",
    "operator_a_presence", "operator_b_presence", "operator_c_presence", "operator_c_cells",
    "operator_a_od", "operator_b_od", "operator_c_od", "operator_market_share",
]  # fmt: skip


# -- catalog contract ------------------------------------------------------------------------------------
@pytest.mark.parametrize("feed_id", FILE_FEEDS)
def test_files_exist_at_catalog_paths_with_catalog_columns(city, catalog, feed_id):
    feed = _feed(catalog, feed_id)
    columns = [c["name"] for c in feed["columns"]]
    files = _files(city, catalog, feed_id)
    assert files and all(p.is_file() for p in files), files
    if feed["partitioning"] == "none":
        assert len(files) == 1
    kind = feed["delivery"]["kind"]
    for path in files:
        if kind == "csv":
            header, records = _csv_records(path, feed["delivery"].get("encoding", "utf-8"))
            assert [h.lstrip("\ufeff") for h in header] == columns
            assert records
        elif kind == "jsonl":
            objs = [
                json.loads(x)
                for x in path.read_text("utf-8").splitlines()
                if x.startswith("{") and x.endswith("}")
            ]
            assert objs and all(list(o) == columns for o in objs)
        elif kind == "xlsx":
            wb = load_workbook(path, read_only=True)
            assert wb.sheetnames == [feed["delivery"]["sheet"]]
            assert list(next(wb[feed["delivery"]["sheet"]].iter_rows(values_only=True))) == columns
            wb.close()
        elif kind == "parquet":
            schema = pq.read_schema(path)
            assert schema.names == columns
            types = {c["name"]: c["type"] for c in feed["columns"]}
            for f in schema:
                assert str(f.type) == {"varchar": "string", "integer": "int32"}[types[f.name]], f


def test_csv_encodings(city, catalog):
    for feed_id in FILE_FEEDS:
        feed = _feed(catalog, feed_id)
        if feed["delivery"]["kind"] != "csv":
            continue
        for path in _files(city, catalog, feed_id):
            data = path.read_bytes()
            data = gzip.decompress(data) if feed["delivery"].get("compression") == "gzip" else data
            has_bom = data.startswith(b"\xef\xbb\xbf")
            assert has_bom == (feed["delivery"]["encoding"] == "utf-8-sig"), path


def test_sql_feed_tables_have_catalog_columns(city, catalog):
    url = catalog["connections"]["social_insurance"]["default"].format(landing=city.landing)
    db = Path(url.removeprefix("sqlite:///"))
    with sqlite3.connect(db) as con:
        for feed_id in ("si_unit", "si_insured"):
            feed = _feed(catalog, feed_id)
            table = feed["delivery"]["table"]
            info = con.execute(f"PRAGMA table_info({table})").fetchall()
            assert [r[1] for r in info] == [c["name"] for c in feed["columns"]]
            assert [r[1] for r in info if r[5]] == feed["key"]  # primary key
            indexes = [r[1] for r in con.execute(f"PRAGMA index_list({table})")]
            indexed = {con.execute(f"PRAGMA index_info({i})").fetchone()[2] for i in indexes}
            assert "updated_at" in indexed
            stamps = [r[0] for r in con.execute(f"SELECT updated_at FROM {table}")]
            assert all(len(s) == 19 and s[10] == " " for s in stamps)


# -- raw-layer defects: exactly the recorded records are broken -------------------------------------------
def test_registry_undecodable_records_match_manifest(city, catalog, manifest):
    path = _files(city, catalog, "household_registry")[0]
    rel = _rel(city, path)
    lines = path.read_bytes().split(b"\n")[1:-1]
    bad = set()
    for i, line in enumerate(lines, start=1):
        try:
            line.decode("gb18030")
        except UnicodeDecodeError:
            bad.add(i)
    assert bad and bad == _rows(manifest, rel, reasons.UNDECODABLE_BYTES)


@pytest.mark.parametrize(
    "feed_id", ["household_registry", "schools", "egov_applications", "operator_a_presence"]
)
def test_column_count_mismatches_match_manifest(city, catalog, manifest, feed_id):
    feed = _feed(catalog, feed_id)
    for path in _files(city, catalog, feed_id):
        header, records = _csv_records(path, feed["delivery"]["encoding"])
        wrong = {i for i, r in enumerate(records, start=1) if len(r) != len(header)}
        assert wrong and wrong == _rows(manifest, _rel(city, path), reasons.COLUMN_COUNT_MISMATCH)
        assert (
            len(records)
            == json.loads((city.ground_truth / "summary.json").read_text())["rows_written"][_rel(city, path)]
        )


@pytest.mark.parametrize("feed_id", ["household_registry", "egov_applications"])
def test_missing_keys_match_manifest(city, catalog, manifest, feed_id):
    feed = _feed(catalog, feed_id)
    key = feed["columns"].index(next(c for c in feed["columns"] if c["name"] == feed["key"][0]))
    for path in _files(city, catalog, feed_id):
        header, records = _csv_records(path, feed["delivery"]["encoding"])
        blank = {i for i, r in enumerate(records, start=1) if len(r) == len(header) and r[key] == ""}
        assert blank and blank == _rows(manifest, _rel(city, path), reasons.MISSING_KEY)


def test_legal_entities_raw_defects(city, catalog, manifest):
    path = _files(city, catalog, "legal_entities")[0]
    rel = _rel(city, path)
    found = {reasons.INVALID_JSON: set(), reasons.NOT_A_JSON_OBJECT: set(), reasons.MISSING_KEY: set()}
    for i, line in enumerate(path.read_text("utf-8").split("\n")[:-1], start=1):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            found[reasons.INVALID_JSON].add(i)
            continue
        if not isinstance(obj, dict):
            found[reasons.NOT_A_JSON_OBJECT].add(i)
        elif not obj.get("uscc"):
            found[reasons.MISSING_KEY].add(i)
    for reason, rows in found.items():
        assert rows and rows == _rows(manifest, rel, reason), reason


def test_medical_facilities_missing_key_and_types(city, catalog, manifest):
    path = _files(city, catalog, "medical_facilities")[0]
    wb = load_workbook(path, read_only=True)
    rows = list(wb["医疗机构"].iter_rows(values_only=True))[1:]
    wb.close()
    blank = {i for i, r in enumerate(rows, start=1) if not r[0]}
    assert blank and blank == _rows(manifest, _rel(city, path), reasons.MISSING_KEY)
    assert all(isinstance(r[8], int) and isinstance(r[9], int) and isinstance(r[6], float) for r in rows)


def test_raw_defects_never_share_a_record(manifest):
    raw = manifest[manifest["layer"] == "raw"]
    assert not raw.duplicated(["file", "row_number"]).any()
    assert set(raw["defect"]) <= set(reasons.ALL)


# -- content-layer defects --------------------------------------------------------------------------------
def test_registry_id_defects_are_what_the_manifest_says(city, catalog, manifest, truth):
    path = _files(city, catalog, "household_registry")[0]
    rel = _rel(city, path)
    header, records = _csv_records(path, "gb18030")
    ids = {i: r[0] for i, r in enumerate(records, start=1)}
    m = manifest[manifest["file"] == rel]
    clean = {
        i: d.removeprefix("clean_id=") for i, d in zip(m["row_number"].astype(int), m["detail"], strict=True)
    }

    def rows(defect):
        return [int(r) for r in m.loc[m["defect"] == defect, "row_number"]]

    assert rows("bad_check_digit") and all(
        not ric.is_valid(ids[i]) and len(ids[i]) == 18 for i in rows("bad_check_digit")
    )
    for i in rows("legacy_15_digit_id"):
        assert len(ids[i]) == 15 and ids[i] == clean[i][:6] + clean[i][8:17]
    for i in rows("lowercase_x_check_digit"):
        assert ids[i].endswith("x") and ids[i].upper() == clean[i]
    for i in rows("fullwidth_digits"):
        assert not ids[i].isascii() and ids[i].translate(FULLWIDTH_BACK) == clean[i]
    # Stale codes and their successors from the official record (catalog/division_changes.csv), which
    # the demo reads itself; where a township decides, the address names it.
    with open(settings.REPO_ROOT / "catalog" / "division_changes.csv", encoding="utf-8", newline="") as f:
        record = list(csv.DictReader(f))
    allowed = {(r["old_code"], r["new_codes"], "") for r in record if r["kind"] in ("rename", "merge")}
    for r in record:
        for part in filter(None, r["townships"].split(";")):
            target, _, towns = part.partition(":")
            allowed |= {(r["old_code"], target, t) for t in towns.split("|")}
        if r["kind"] == "split" and r["apportion_to"] != r["old_code"]:
            allowed.add((r["old_code"], r["apportion_to"], ""))
    details = dict(zip(m["row_number"].astype(int), m["detail"], strict=True))
    for i in rows("retired_district_code"):
        d = dict(kv.split("=", 1) for kv in details[i].split(" "))
        assert (
            records[i - 1][6] == d["delivered"] and (d["delivered"], d["current"], d["township"]) in allowed
        )
        assert d["township"] in records[i - 1][7]
    without = {r["old_code"] for r in record if r["kind"] == "retired"}
    assert rows("retired_code_without_successor")
    for i in rows("retired_code_without_successor"):
        assert records[i - 1][6] in without
    for i, detail in zip(rows("duplicate_row"), m.loc[m["defect"] == "duplicate_row", "detail"], strict=True):
        assert records[i - 1] == records[int(detail.removeprefix("copy of row ")) - 1]
    flagged = {int(r) for r in m["row_number"]}
    plain = [ids[i] for i in ids if i not in flagged]
    assert all(ric.is_valid(x) for x in plain)
    # The clean registry holds exactly the true residents.
    assert set(plain) <= set(truth["residents"]["id_number"])


def test_every_true_resident_id_is_valid_and_sex_matches(truth):
    r = truth["residents"]
    assert r["id_number"].is_unique
    assert all(ric.is_valid(x) for x in r["id_number"])
    odd = r["id_number"].str[16].astype(int) % 2 == 1
    assert (odd == (r["sex"] == "男")).all()
    assert (r["id_number"].str[6:14] == r["birth_date"].str.replace("-", "")).all()
    assert r["age"].between(0, 95).all()
    assert r["phone"].str.fullmatch(r"1[3-9]\d{9}").all() and r["phone"].is_unique


def test_entity_content_defects(city, catalog, manifest, truth):
    path = _files(city, catalog, "legal_entities")[0]
    rel = _rel(city, path)
    objs = {}
    for i, line in enumerate(path.read_text("utf-8").split("\n")[:-1], start=1):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            objs[i] = obj
    bad = _rows(manifest, rel, "invalid_uscc_check_char")
    assert bad and all(not uscc.is_valid(objs[i]["uscc"]) for i in bad)
    assert all(uscc.is_valid(o["uscc"]) for i, o in objs.items() if o["uscc"] and i not in bad)
    assert all(
        objs[i]["registered_capital"].endswith("万元") for i in _rows(manifest, rel, "capital_as_text")
    )
    assert all(isinstance(v, str | None) for o in objs.values() for v in o.values())


def test_school_and_facility_content_defects(city, catalog, manifest, truth):
    path = _files(city, catalog, "schools")[0]
    header, records = _csv_records(path, "utf-8-sig")
    over = {i for i, r in enumerate(records, start=1) if len(r) == len(header) and int(r[8]) > int(r[7])}
    assert over and over == _rows(manifest, _rel(city, path), "enrolment_over_capacity")

    path = _files(city, catalog, "medical_facilities")[0]
    wb = load_workbook(path, read_only=True)
    rows = list(wb["医疗机构"].iter_rows(values_only=True))[1:]
    wb.close()
    rel = _rel(city, path)
    for i in _rows(manifest, rel, "swapped_lng_lat"):
        assert rows[i - 1][6] < rows[i - 1][7]  # latitude where longitude should be
    lng0 = truth["divisions"].query("status == 'current'")["lng"].astype(float).mean()
    for i in _rows(manifest, rel, "outside_city"):
        assert abs(rows[i - 1][6] - lng0) > 2 or rows[i - 1][7] > 35 or rows[i - 1][7] < 25


def test_egov_content_defects(city, catalog, manifest):
    for path in _files(city, catalog, "egov_applications"):
        rel = _rel(city, path)
        header, records = _csv_records(path, "utf-8")
        ok = {i: r for i, r in enumerate(records, start=1) if len(r) == len(header)}
        missing = {i for i, r in ok.items() if r[11] == "已办结" and r[8] == ""}
        assert missing and missing == _rows(manifest, rel, "missing_completion")
        cross = {i for i, r in ok.items() if r[10] == "Y"}
        assert cross and cross == _rows(manifest, rel, "cross_region")


# -- identities agree across departments -----------------------------------------------------------------
def test_identities_are_consistent_across_feeds(city, catalog, manifest, truth):
    people = truth["residents"].set_index("id_number")
    firms = truth["enterprises"]
    with sqlite3.connect(city.landing / "hrss" / "social_insurance.sqlite") as con:
        insured = pd.read_sql("SELECT * FROM si_insured", con)
        units = pd.read_sql("SELECT * FROM si_unit", con)
    assert insured["id_number"].isin(people.index).all()
    assert (insured["name"].to_numpy() == people.loc[insured["id_number"], "name"].to_numpy()).all()
    assert insured["unit_id"].isin(units["unit_id"]).all()
    assert units["uscc"].isin(firms["uscc"]).all()
    employer = people.loc[insured["id_number"], "employer_uscc"].to_numpy()
    assert (employer == units.set_index("unit_id").loc[insured["unit_id"], "uscc"].to_numpy()).all()
    hidden = set(firms.loc[~firms["in_entity_registry"], "uscc"])
    missing = _defects(manifest, "db:si_unit", "employer_not_in_entity_registry")
    assert hidden and set(units.loc[units["uscc"].isin(hidden), "unit_id"]) == set(missing["record_key"])

    path = _files(city, catalog, "legal_entities")[0]
    delivered = set(firms.loc[firms["in_entity_registry"], "uscc"])
    assert not hidden & delivered
    lines = path.read_text("utf-8").split("\n")[:-1]
    assert len(lines) == len(delivered)
    for path in _files(city, catalog, "egov_applications"):
        header, records = _csv_records(path, "utf-8")
        for r in records:
            if len(r) != len(header):
                continue
            assert r[4] in people.index if r[3] == "自然人" else r[4] in delivered


# -- operators --------------------------------------------------------------------------------------------
def test_operator_feeds(city, catalog, manifest, truth):
    summary = json.loads((city.ground_truth / "summary.json").read_text())
    codes = set(DEFAULT_COUNTIES)
    for path in _files(city, catalog, "operator_a_presence"):
        header, records = _csv_records(path, "utf-8")
        good = [r for r in records if len(r) == 3]
        assert all(h3.is_valid_cell(r[0]) and h3.get_resolution(r[0]) == 8 for r in good)
        assert all(r[2] == "<5" or int(r[2]) >= 5 for r in good)
    for path in _files(city, catalog, "operator_b_presence"):
        df = pd.read_parquet(path)
        masked = df["is_masked"] == 1
        assert df.loc[masked, "pop"].isna().all() and (df.loc[~masked, "pop"] >= 5).all()
        assert masked.sum() == summary["suppressed_cells"][_rel(city, path)]
        missing = _defects(manifest, _rel(city, path), "missing_hour")
        present = set(df["hour"])
        assert all(int(k.split()[1]) not in present for k in missing["record_key"])
    cells = pd.read_csv(_files(city, catalog, "operator_c_cells")[0], dtype=str)
    assert cells["cell_id"].is_unique and set(cells["district_code"]) <= codes
    for path in _files(city, catalog, "operator_c_presence"):
        df = pd.read_csv(path, dtype=str)
        assert df["cell_id"].isin(cells["cell_id"]).all()
        assert (df["users"] == "<5").sum() == summary["suppressed_cells"][_rel(city, path)]
    shares = pd.read_csv(_files(city, catalog, "operator_market_share")[0], dtype={"district_code": str})
    sums = shares.groupby("district_code")["subscriber_share"].sum()
    assert set(sums.index) == codes and ((sums - 1).abs() < 1e-9).all()
    assert set(shares["operator"]) == {"CMCC", "CUCC", "CTCC"}
    for feed_id in ("operator_a_od", "operator_b_od", "operator_c_od"):
        for path in _files(city, catalog, feed_id):
            df = pd.read_csv(path, dtype=str, compression="gzip")
            o, d = [c for c in df.columns if c != "stat_date"][:2]
            assert set(df[o]) <= codes and set(df[d]) <= codes
    # each operator only sees its subscribers: operator A's night-time total is about its share
    people = truth["residents"]
    subs = (people["has_phone"] & (people["operator"] == "CMCC")).sum()
    header, records = _csv_records(_files(city, catalog, "operator_a_presence")[1], "utf-8")
    night = sum(int(r[2]) if r[2] != "<5" else 2 for r in records if len(r) == 3 and r[1].endswith(" 03"))
    assert 0.6 * subs < night < 1.2 * subs


def test_redelivery_is_a_complete_corrected_file(city, catalog, manifest):
    first = _files(city, catalog, "operator_a_presence")[0]
    rel = _rel(city, first)
    assert len(_defects(manifest, rel, "redelivered_file")) == 1
    corrected = city.demo_dir / "redelivery" / rel
    assert corrected.name == first.name and corrected.read_bytes() != first.read_bytes()
    full = pd.read_csv(corrected, dtype=str)
    assert full["stat_hour"].str[-2:].nunique() == 24
    _, records = _csv_records(first, "utf-8")
    delivered_hours = {r[1][-2:] for r in records if len(r) == 3}
    missing = {k[-2:] for k in _defects(manifest, rel, "missing_hour")["record_key"]}
    assert missing == {"21", "22", "23"} and not missing & delivered_hours


def test_hotline_store_versions(city, manifest):
    versions = [
        json.loads(x)
        for p in sorted(city.hotline_store.glob("tickets_*.jsonl"))
        for x in p.read_text("utf-8").splitlines()
    ]
    assert {p.name for p in city.hotline_store.glob("*.jsonl")} == {f"tickets_{d:%Y%m%d}.jsonl" for d in DAYS}
    by_ticket: dict[str, list[dict]] = {}
    for v in versions:
        by_ticket.setdefault(v["ticket_id"], []).append(v)
    horizon = f"{END} 23:59:59"
    assert all(v["updated_at"] <= horizon for v in versions)
    for key in _defects(manifest, "api:hotline_tickets", "late_update")["record_key"]:
        vs = sorted(by_ticket[key], key=lambda v: v["updated_at"])
        assert vs[-1]["updated_at"][:10] > vs[-1]["received_at"][:10]
    for key in _defects(manifest, "api:hotline_tickets", "closed_before_received")["record_key"]:
        closed = [v for v in by_ticket[key] if v["closed_at"]]
        assert closed and all(v["closed_at"] < v["received_at"] for v in closed)
    for key in _defects(manifest, "api:hotline_tickets", "pii_in_description")["record_key"]:
        assert any(ch.isdigit() for ch in by_ticket[key][0]["description"])


def test_hotline_descriptions_come_with_their_labels(city, manifest, truth):
    """ground_truth/hotline_text_labels.jsonl: every ticket's description as the API serves it, with the
    span of each name, address, phone, ID, ... written into it (the scrubber's benchmark reads these)."""
    labels = {
        r["ticket_id"]: r
        for r in map(
            json.loads, (city.ground_truth / "hotline_text_labels.jsonl").read_text("utf-8").splitlines()
        )
    }
    served = {
        v["ticket_id"]: v["description"]
        for p in city.hotline_store.glob("tickets_*.jsonl")
        for v in map(json.loads, p.read_text("utf-8").splitlines())
    }
    assert labels.keys() == served.keys()
    assert all(labels[t]["text"] == d for t, d in served.items())
    spans = [(s, r["text"]) for r in labels.values() for s in r["spans"]]
    assert {s["kind"] for s, _ in spans} >= {"name", "address", "mobile", "resident_id"}
    assert all(0 <= s["start"] < s["end"] <= len(text) for s, text in spans)
    residents = set(truth["residents"]["name"])
    named = [text[s["start"] : s["end"]] for s, text in spans if s["kind"] == "name"]
    assert sum(n in residents for n in named) > 0.5 * len(named)  # mostly the city's own people
    for s, text in spans:
        if s["kind"] == "resident_id":  # an ID of 18 (stdnum-valid) or the legacy 15 digits
            number = text[s["start"] : s["end"]].replace(" ", "").upper()
            assert ric.is_valid(number) or (len(number) == 15 and number.isdigit())
    for key in _defects(manifest, "api:hotline_tickets", "pii_in_description")["record_key"]:
        assert {s["kind"] for s in labels[key]["spans"]} & {"mobile", "resident_id"}


# -- configuration ----------------------------------------------------------------------------------------
def test_default_counties_are_hangzhou_now():
    h = divisions.history()
    latest = h[(h["year"] == h["year"].max()) & (h["city_adcode"] == "330100")]
    assert sorted(latest["county_adcode"]) == DEFAULT_COUNTIES
    assert {"330113", "330114"} <= set(DEFAULT_COUNTIES) and "330103" not in DEFAULT_COUNTIES


def test_divisions_ground_truth(truth):
    d = truth["divisions"].set_index("code")
    assert (
        d.loc["330103", "status"] == "retired" and d.loc["330103", "maps_to"] == "330105"
    )  # 国函〔2021〕22号
    assert d.loc["330125", "maps_to"] == "330110"  # 余杭县 lives on as 余杭区 (lineage)
    jianggan = d.loc[["330104"]]  # split: 下沙/白杨街道 to 钱塘区, the rest to 上城区
    assert set(zip(jianggan["maps_to"], jianggan["township"].fillna(""), strict=True)) == {
        ("330102", ""),
        ("330114", "下沙街道"),
        ("330114", "白杨街道"),
    }
    assert d.loc["330113", "centroid_source"] == "boundary"  # newer than cpca: a point inside its polygon
    assert d.loc["330106", "centroid_source"] == "cpca"


def test_same_seed_same_bytes(city, tmp_path):
    again = _generate(tmp_path)

    def digests(root: Path) -> dict[str, str]:
        return {
            p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))
            if p.is_file()
        }

    assert digests(again.landing) == digests(city.landing)
    assert digests(again.hotline_store) == digests(city.hotline_store)
    assert (again.ground_truth / "defects.csv").read_bytes() == (
        city.ground_truth / "defects.csv"
    ).read_bytes()


def test_cross_province_city(tmp_path):
    codes = ["330102", "310115", "320505"]
    s = generate_demo_city(
        DemoConfig(
            counties=codes,
            residents=600,
            days=1,
            end_date=END,
            landing=tmp_path / "l",
            demo_dir=tmp_path / "d",
        )
    )
    header, records = _csv_records(
        s.landing / f"public_security/household_registry_{END:%Y%m%d}.csv", "gb18030"
    )
    divisions_csv = pd.read_csv(s.ground_truth / "divisions.csv", dtype=str)
    allowed = set(divisions_csv["code"])
    assert {r[6] for r in records if len(r) == len(header)} <= allowed
    assert set(codes) <= {r[6] for r in records if len(r) == len(header)}
    assert {"310119", "330104"} <= set(divisions_csv.loc[divisions_csv["status"] == "retired", "code"])


def test_zero_defect_rate_injects_nothing(tmp_path):
    s = generate_demo_city(
        DemoConfig(
            counties=["330106"],
            residents=300,
            days=1,
            end_date=END,
            defect_rate=0.0,
            landing=tmp_path / "l",
            demo_dir=tmp_path / "d",
        )
    )
    assert s.defects == 0
    assert not (s.demo_dir / "redelivery").exists()


@pytest.mark.parametrize("code", ["999999", "330103"])
def test_unknown_or_retired_county_raises(tmp_path, code):
    with pytest.raises(ValueError, match=code):
        generate_demo_city(
            DemoConfig(counties=["330106", code], residents=300, days=1, landing=tmp_path, demo_dir=tmp_path)
        )


def test_the_next_nights_registry_names_the_same_people_the_same_way(city, tmp_path):
    """The city is generated again for each night delivered: the registry delivered the next night gives
    the people it shares with tonight's the same ID numbers, birth and registration dates (ages are not
    counted back from each night's end date), and shares nearly all of them; its defects are its own (a
    few records differ, so its bytes do)."""
    next_night = _generate(tmp_path, days=2, end_date=END + timedelta(days=1))

    def registry(summary, day: date) -> dict[str, tuple[str, str, str]]:
        header, records = _csv_records(
            summary.landing / f"public_security/household_registry_{day:%Y%m%d}.csv", "gb18030"
        )
        ids, name, born, registered = (
            header.index(c) for c in ("id_number", "name", "birth_date", "registered_on")
        )
        well_formed = (r for r in records if len(r) == len(header) and r[ids].strip())  # a key to match by
        return {r[ids]: (r[name], r[born], r[registered]) for r in well_formed}

    tonight, tomorrow = registry(city, END), registry(next_night, END + timedelta(days=1))
    shared = tonight.keys() & tomorrow.keys()
    assert len(shared) >= 0.95 * len(tonight) > 1800
    assert {i: tonight[i] for i in shared} == {i: tomorrow[i] for i in shared}
    assert tonight != tomorrow
