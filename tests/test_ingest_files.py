"""File ingestion on hand-made deliveries: each kind, quarantine reasons, file-level errors, redelivery."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from openpyxl import Workbook

from citybrain.ingest.pipeline import ingest_files

REGISTRY_ROW = "{id},张三,男,1949-12-31,汉族,H{n},330102,杭州市上城区解放路{n}号,13800000000,2020-01-01"


def registry_csv(rows: list[str], catalog) -> bytes:
    header = ",".join(catalog.feed("household_registry").column_names)
    return ("\r\n".join([header, *rows]) + "\r\n").encode("gb18030")


def write(landing: Path, relative: str, data: bytes) -> Path:
    path = landing / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def query(lake: Path, sql: str, params=None):
    con = duckdb.connect(str(lake / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def ingest(lake, catalog, feed_id, partition=None, batch="run-1"):
    return ingest_files(catalog.feed(feed_id), lake / "landing", lake / "warehouse.duckdb", partition, batch)


def assert_accounted(lake):
    """received = loaded + quarantined for every delivery, and the tables agree with the log."""
    for log_id, received, loaded, quarantined, feed_id, status in query(
        lake,
        "SELECT log_id, rows_received, rows_loaded, rows_quarantined, feed_id, status FROM raw.ingestion_log",
    ):
        assert received == loaded + quarantined
        (in_quarantine,) = query(lake, "SELECT count(*) FROM raw.quarantine WHERE log_id = ?", [log_id])[0]
        assert in_quarantine == quarantined, (feed_id, status)


def test_gb18030_csv_quarantines_bad_rows_with_reason_and_raw_text(lake, catalog):
    rows = [
        REGISTRY_ROW.format(id="330102199001011234", n=1),
        REGISTRY_ROW.format(id="330102199001011235", n=2) + ",EXTRA",  # one field too many
        REGISTRY_ROW.format(id="", n=3),  # blank key
        '330102199001011236,"多行\n地址",男,1990-01-01,汉族,H4,330102,"带""引号""的地址",138,2020-01-01',
    ]
    data = registry_csv(rows, catalog)
    bad = (
        REGISTRY_ROW.format(id="330102199001011237", n=5)
        .encode("gb18030")
        .replace("张三".encode("gb18030"), b"\xff\xff")
    )
    write(lake / "landing", "public_security/household_registry_20261120.csv", data + bad + b"\r\n")

    result = ingest(lake, catalog, "household_registry")
    assert not result.problems
    assert (result.rows_received, result.rows_loaded, result.rows_quarantined) == (5, 2, 3)
    assert result.quarantined_by_reason() == {
        "column_count_mismatch": 1,
        "missing_key": 1,
        "undecodable_bytes": 1,
    }
    loaded = query(
        lake,
        "SELECT id_number, name, address, _row_number, _source_file, _batch_id FROM raw.household_registry ORDER BY 4",
    )
    assert loaded[0][:4] == ("330102199001011234", "张三", "杭州市上城区解放路1号", 1)
    assert loaded[1][1:4] == ("多行\n地址", '带"引号"的地址', 4)
    assert loaded[0][4] == "public_security/household_registry_20261120.csv" and loaded[0][5] == "run-1"
    quarantined = query(lake, "SELECT row_number, reason, raw_text FROM raw.quarantine ORDER BY row_number")
    assert [(q[0], q[1]) for q in quarantined] == [
        (2, "column_count_mismatch"),
        (3, "missing_key"),
        (5, "undecodable_bytes"),
    ]
    assert quarantined[0][2].rstrip("\r\n").endswith(",EXTRA")
    assert "\\xff\\xff" in quarantined[2][2]
    assert_accounted(lake)


def test_ids_stay_text(lake, catalog):
    write(
        lake / "landing",
        "public_security/household_registry_20261120.csv",
        registry_csv(
            [REGISTRY_ROW.format(id="11010519491231002X", n=1), REGISTRY_ROW.format(id="000123", n=2)],
            catalog,
        ),
    )
    ingest(lake, catalog, "household_registry")
    assert query(lake, "SELECT id_number FROM raw.household_registry ORDER BY 1") == [
        ("000123",),
        ("11010519491231002X",),
    ]
    types = query(
        lake,
        "SELECT data_type FROM information_schema.columns WHERE table_name = 'household_registry' AND table_schema = 'raw' AND column_name NOT LIKE '\\_%' ESCAPE '\\'",
    )
    assert {t for (t,) in types} == {"VARCHAR"}


def test_reingesting_the_same_file_adds_nothing(lake, catalog):
    write(
        lake / "landing",
        "public_security/household_registry_20261120.csv",
        registry_csv([REGISTRY_ROW.format(id="330102199001011234", n=1)], catalog),
    )
    first = ingest(lake, catalog, "household_registry", batch="run-1")
    second = ingest(lake, catalog, "household_registry", batch="run-2")
    assert first.rows_loaded == 1 and second.entries == [] and second.unchanged
    assert query(lake, "SELECT count(*) FROM raw.household_registry") == [(1,)]
    assert query(lake, "SELECT count(*) FROM raw.ingestion_log") == [(1,)]


def test_a_feed_opens_the_warehouse_once_before_reading_and_once_per_new_delivery(lake, catalog, monkeypatch):
    """Each open of the warehouse file costs a DuckDB open (and a checkpoint at close after a write), once
    per feed and night: files loaded before, and the count of current rows, need no connection of their own."""
    from citybrain.warehouse import Warehouse

    landing = lake / "landing"
    for day, ids in (("20261120", ["330102199001011234"]), ("20261121", ["330102199001011235"])):
        write(
            landing,
            f"public_security/household_registry_{day}.csv",
            registry_csv([REGISTRY_ROW.format(id=i, n=n) for n, i in enumerate(ids)], catalog),
        )
    ingest(lake, catalog, "household_registry", batch="run-1")
    write(
        landing,
        "public_security/household_registry_20261122.csv",
        registry_csv([REGISTRY_ROW.format(id=f"33010219900101123{n}", n=n) for n in range(3)], catalog),
    )
    opened = []
    connect = Warehouse.connect

    def counted(self, *args, **kwargs):
        opened.append(self.path)
        return connect(self, *args, **kwargs)

    monkeypatch.setattr(Warehouse, "connect", counted)
    night = ingest(lake, catalog, "household_registry", batch="run-2")
    assert len(opened) == 2 and night.rows_loaded == 3 and night.rows_current == 3
    assert sorted(night.unchanged) == [
        "public_security/household_registry_20261120.csv",
        "public_security/household_registry_20261121.csv",
    ]
    opened.clear()
    again = ingest(lake, catalog, "household_registry", batch="run-3")
    assert len(opened) == 1 and again.entries == [] and again.rows_current == 3


def test_a_file_loaded_by_another_run_meanwhile_is_not_loaded_twice(lake, catalog, monkeypatch):
    """Two runs find the same new file; the second finishes parsing after the first loaded it. (A daily
    feed's file is parsed outside the warehouse lock; a full snapshot is read under it, so there another
    run waits and then finds the load: ingest_files' first check.)"""
    import citybrain.ingest.pipeline as pipeline

    write(lake / "landing", "egov/applications_20261120.csv", egov_csv(catalog, ["A1"]))
    parse = pipeline.read_delivery
    calls = []

    def parse_while_another_run_loads(*args, **kwargs):
        batch = parse(*args, **kwargs)
        if not calls:
            calls.append("other run")
            monkeypatch.setattr(pipeline, "read_delivery", parse)
            other = ingest(lake, catalog, "egov_applications", "2026-11-20", batch="run-other")
            assert other.rows_loaded == 1
        return batch

    monkeypatch.setattr(pipeline, "read_delivery", parse_while_another_run_loads)
    this = ingest(lake, catalog, "egov_applications", "2026-11-20", batch="run-this")
    assert calls and this.entries == [] and this.unchanged
    assert query(lake, "SELECT count(*) FROM raw.egov_applications") == [(1,)]
    assert query(lake, "SELECT batch_id, status FROM raw.ingestion_log") == [("run-other", "loaded")]


def test_an_unreadable_snapshot_leaves_the_previous_one_current(lake, catalog):
    """The previous snapshot moves to history while the next is read, in the next one's transaction: a
    next one that cannot be read (here a header only) rolls the move back."""
    landing = lake / "landing"
    rows = [REGISTRY_ROW.format(id=f"33010219900101123{i}", n=i) for i in range(3)]
    write(landing, "public_security/household_registry_20261120.csv", registry_csv(rows, catalog))
    assert ingest(lake, catalog, "household_registry", batch="run-1").rows_loaded == 3
    write(landing, "public_security/household_registry_20261121.csv", registry_csv([], catalog))
    refused = ingest(lake, catalog, "household_registry", batch="run-2")
    assert "no records (header only)" in refused.problems[0] and refused.rows_current == 3
    assert query(lake, "SELECT count(*), min(_batch_id) FROM raw.household_registry") == [(3, "run-1")]
    assert query(lake, "SELECT count(*) FROM raw_history.household_registry") == [(0,)]
    assert query(lake, "SELECT source_file, status FROM raw.ingestion_log ORDER BY started_at") == [
        ("public_security/household_registry_20261120.csv", "loaded"),
        ("public_security/household_registry_20261121.csv", "failed"),
    ]
    write(landing, "public_security/household_registry_20261122.csv", registry_csv(rows[:2], catalog))
    assert ingest(lake, catalog, "household_registry", batch="run-3").rows_current == 2
    assert query(lake, "SELECT count(*), min(_superseded_by_batch) FROM raw_history.household_registry") == [
        (3, "run-3")
    ]


def test_full_snapshot_redelivery_replaces_and_keeps_history(lake, catalog):
    landing = lake / "landing"
    write(
        landing,
        "public_security/household_registry_20261120.csv",
        registry_csv([REGISTRY_ROW.format(id=f"33010219900101123{i}", n=i) for i in range(3)], catalog),
    )
    ingest(lake, catalog, "household_registry", batch="run-1")
    write(
        landing,
        "public_security/household_registry_20261121.csv",
        registry_csv([REGISTRY_ROW.format(id="330102199001011239", n=9)], catalog),
    )
    ingest(lake, catalog, "household_registry", batch="run-2")
    assert query(lake, "SELECT id_number, _batch_id FROM raw.household_registry") == [
        ("330102199001011239", "run-2")
    ]
    assert query(lake, "SELECT count(*), min(_superseded_by_batch) FROM raw_history.household_registry") == [
        (3, "run-2")
    ]
    statuses = query(
        lake, "SELECT source_file, status, superseded_by_batch FROM raw.ingestion_log ORDER BY started_at"
    )
    assert statuses == [
        ("public_security/household_registry_20261120.csv", "superseded", "run-2"),
        ("public_security/household_registry_20261121.csv", "loaded", None),
    ]


def egov_csv(catalog, ids: list[str]) -> bytes:
    header = ",".join(catalog.feed("egov_applications").column_names)
    rows = [
        f"{i},S001,户口迁移,自然人,330102199001011234,2026-11-20 09:00:00,网上,0,2026-11-20 10:00:00,330102,N,办结"
        for i in ids
    ]
    return ("\n".join([header, *rows]) + "\n").encode()


def test_corrected_redelivery_of_a_partition_replaces_only_that_file(lake, catalog):
    landing = lake / "landing"
    write(landing, "egov/applications_20261120.csv", egov_csv(catalog, ["A1", "A2"]))
    write(landing, "egov/applications_20261121.csv", egov_csv(catalog, ["B1"]))
    ingest(lake, catalog, "egov_applications", "2026-11-20", "run-1")
    ingest(lake, catalog, "egov_applications", "2026-11-21", "run-1")
    write(landing, "egov/applications_20261120.csv", egov_csv(catalog, ["A1", "A2", "A3"]))  # corrected
    result = ingest(lake, catalog, "egov_applications", "2026-11-20", "run-2")
    assert result.rows_loaded == 3 and result.rows_current == 3
    assert query(lake, "SELECT _partition, count(*) FROM raw.egov_applications GROUP BY 1 ORDER BY 1") == [
        ("2026-11-20", 3),
        ("2026-11-21", 1),
    ]
    assert query(lake, "SELECT count(*) FROM raw_history.egov_applications") == [(2,)]
    history = query(
        lake,
        "SELECT status, file_sha256 FROM raw.ingestion_log WHERE partition_key = '2026-11-20' ORDER BY started_at",
    )
    assert [h[0] for h in history] == ["superseded", "loaded"] and history[0][1] != history[1][1]


def test_same_bytes_under_two_names_is_a_duplicate(lake, catalog):
    landing = lake / "landing"
    data = registry_csv([REGISTRY_ROW.format(id="330102199001011234", n=1)], catalog)
    write(landing, "public_security/household_registry_20261120.csv", data)
    ingest(lake, catalog, "household_registry", batch="run-1")
    write(landing, "public_security/household_registry_20261120_copy.csv", data)
    result = ingest(lake, catalog, "household_registry", batch="run-2")
    assert [(e.status, e.duplicate_of) for e in result.entries] == [
        ("duplicate", "public_security/household_registry_20261120.csv")
    ]
    assert query(lake, "SELECT count(*) FROM raw.household_registry") == [(1,)]
    again = ingest(lake, catalog, "household_registry", batch="run-3")
    assert again.entries == []  # the duplicate is recorded once


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "empty file (0 bytes)"),
        ("id_number,name\r\n1,2\r\n".encode("gb18030"), "missing columns ['sex', 'birth_date'"),
        ("身份证号,姓名\r\n".encode("utf-16"), "wrong encoding"),
    ],
)
def test_file_level_problems_fail_naming_the_file_and_leave_it_in_place(lake, catalog, content, problem):
    path = write(lake / "landing", "public_security/household_registry_20261120.csv", content)
    result = ingest(lake, catalog, "household_registry")
    assert len(result.problems) == 1
    assert (
        "public_security/household_registry_20261120.csv" in result.problems[0]
        and problem in result.problems[0]
    )
    assert path.exists()
    assert query(lake, "SELECT status, message FROM raw.ingestion_log")[0][0] == "failed"


def test_missing_delivery_for_a_partition_is_reported(lake, catalog):
    result = ingest(lake, catalog, "egov_applications", "2026-11-20")
    assert "no delivery for partition 2026-11-20" in result.problems[0]
    assert "egov/applications_20261120.csv" in result.problems[0]


def test_jsonl_reasons(lake, catalog):
    feed = catalog.feed("legal_entities")
    good = {c: None for c in feed.column_names} | {
        "uscc": "91330102MA27XXXX1X",
        "name": "某公司",
        "registered_capital": 500,
    }
    lines = [
        json.dumps(good, ensure_ascii=False),
        '{"uscc": "91330102MA27XXXX2X", "name": "截断',
        "[1, 2]",
        json.dumps(good | {"uscc": ""}, ensure_ascii=False),
        "",
        json.dumps(
            good | {"uscc": "91330102MA27XXXX3X", "registered_capital": "500万元", "extra": {"a": 1}},
            ensure_ascii=False,
        ),
    ]
    write(lake / "landing", "market_regulation/legal_entities_20261120.jsonl", "\n".join(lines).encode())
    result = ingest(lake, catalog, "legal_entities")
    assert result.quarantined_by_reason() == {"invalid_json": 1, "missing_key": 1, "not_a_json_object": 1}
    assert query(lake, "SELECT uscc, registered_capital, _row_number FROM raw.legal_entities ORDER BY 3") == [
        ("91330102MA27XXXX1X", "500", 1),
        ("91330102MA27XXXX3X", "500万元", 6),
    ]
    assert_accounted(lake)


def test_xlsx_values_become_text(lake, catalog):
    feed = catalog.feed("medical_facilities")
    wb = Workbook()
    ws = wb.active
    ws.title = "医疗机构"
    ws.append(feed.column_names)
    ws.append(
        [
            "F001",
            "市一医院",
            "综合医院",
            "三级甲等",
            "330102",
            "地址",
            120.1234567,
            30.25,
            800,
            210.0,
            "2026-11-01",
        ]
    )
    ws.append([None, "无编号诊所", "诊所", None, "330102", "地址", 120.1, 30.2, 0, 1, "2026-11-01"])
    path = lake / "landing" / "health" / "medical_facilities_202611.xlsx"
    path.parent.mkdir(parents=True)
    wb.save(path)
    result = ingest(lake, catalog, "medical_facilities")
    assert result.quarantined_by_reason() == {"missing_key": 1}
    assert query(lake, "SELECT facility_id, lng_gcj02, beds, doctors FROM raw.medical_facilities") == [
        ("F001", "120.1234567", "800", "210")
    ]


def test_not_an_xlsx(lake, catalog):
    write(lake / "landing", "health/medical_facilities_202611.xlsx", b"<html>error</html>")
    assert "not a readable .xlsx workbook" in ingest(lake, catalog, "medical_facilities").problems[0]


def test_parquet_typed_columns_become_text(lake, catalog):
    table = pa.table(
        {
            "stat_date": ["20261120"] * 3,
            "hour": pa.array([0, 1, 2], pa.int32()),
            "grid_id": ["9421_2732", None, "9421_2733"],
            "pop": pa.array([12, None, 7], pa.int64()),
            "is_masked": pa.array([0, 1, 0], pa.int8()),
        }
    )
    path = lake / "landing" / "operators" / "cucc" / "grid_presence_20261120.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(table, path)
    result = ingest(lake, catalog, "operator_b_presence", "2026-11-20")
    assert result.quarantined_by_reason() == {"missing_key": 1}
    assert query(lake, "SELECT grid_id, hour, pop, is_masked FROM raw.operator_b_presence ORDER BY 1") == [
        ("9421_2732", "0", "12", "0"),
        ("9421_2733", "2", "7", "0"),
    ]
    assert "grid_id" in query(lake, "SELECT raw_text FROM raw.quarantine")[0][0]


def test_gzip_csv_and_truncated_gzip(lake, catalog):
    landing = lake / "landing"
    body = b"o_adcode,d_adcode,trip_cnt\n330102,330105,1234\n330105,330102,<5\n"
    write(landing, "operators/cmcc/od/20261120/od_district.csv.gz", gzip.compress(body))
    result = ingest(lake, catalog, "operator_a_od", "2026-11-20")
    assert result.rows_loaded == 2 and not result.problems
    assert query(lake, "SELECT trip_cnt FROM raw.operator_a_od ORDER BY 1") == [("1234",), ("<5",)]
    write(landing, "operators/cmcc/od/20261121/od_district.csv.gz", gzip.compress(body * 50)[:-30])
    truncated = ingest(lake, catalog, "operator_a_od", "2026-11-21")
    assert "not a complete gzip file" in truncated.problems[0]
    assert query(lake, "SELECT count(*) FROM raw.operator_a_od WHERE _partition = '2026-11-21'") == [(0,)]


def test_new_catalog_column_is_added_to_an_existing_raw_table(lake, catalog):
    from citybrain.catalog import Column

    write(lake / "landing", "egov/applications_20261120.csv", egov_csv(catalog, ["A1"]))
    ingest(lake, catalog, "egov_applications", "2026-11-20")
    feed = catalog.feed("egov_applications")
    wider = feed.model_copy(
        update={
            "columns": [*feed.columns, Column(name="window_no", classification="open", description="窗口号")]
        }
    )
    header = ",".join(wider.column_names)
    write(
        lake / "landing",
        "egov/applications_20261121.csv",
        (header + "\nB1,S1,x,自然人,1,t,网上,0,,330102,N,办结,W3\n").encode(),
    )
    ingest_files(wider, lake / "landing", lake / "warehouse.duckdb", "2026-11-21", "run-2")
    assert query(lake, "SELECT application_id, window_no FROM raw.egov_applications ORDER BY 1") == [
        ("A1", None),
        ("B1", "W3"),
    ]


def test_files_no_feed_claims_are_reported(lake, catalog, capsys):
    from citybrain.ingest.landing import unclaimed_files
    from orchestration.cli import main

    landing = lake / "landing"
    write(landing, "egov/applications_20261120.csv", egov_csv(catalog, ["A1"]))
    write(landing, "egov/applicatons_20261120.csv", b"typo in the name")
    write(landing, "unknown_department/data.csv", b"a,b\n")
    # a * of the path stays inside one folder, as when a run globs its deliveries: never read, so reported
    write(landing, "egov/applications_old/20261120.csv", b"a,b\n")
    write(landing, "_ground_truth/ignored.csv", b"x")
    write(landing, "hrss/social_insurance.sqlite", b"the demo database named by a connection")
    assert unclaimed_files(catalog, landing) == [
        "egov/applications_old/20261120.csv",
        "egov/applicatons_20261120.csv",
        "unknown_department/data.csv",
    ]
    assert main(["landing", "check"]) == 1
    assert "unknown feed: unknown_department/data.csv" in capsys.readouterr().out
