"""The CSV reader reads a file in blocks, the plain lines by Arrow and the others one by one: whatever the
block size, every record gets the same row number, reason and value as the rules of docs/INGESTION.md
give it record by record (expected values written out here, not taken from the reader)."""

from __future__ import annotations

import pytest

from citybrain.catalog import load_catalog
from citybrain.ingest import csv_reader
from citybrain.ingest.file_readers import read_delivery

FEED = "household_registry"  # GB18030, key id_number
HEADER = "id_number,name,sex,birth_date,ethnicity,household_id,hukou_district,address,phone,registered_on"


def row(
    n: int, name="张三", address: str | None = None, phone="13800000000", id_: str | None = None, sex="男"
) -> str:
    id_number = f"33010219900101{n:04d}" if id_ is None else id_
    address = f"杭州市上城区解放路{n}号" if address is None else address
    return f"{id_number},{name},{sex},1990-01-01,汉族,H{n},330102,{address},{phone},2020-01-01"


def delivery() -> tuple[bytes, dict[int, str], dict[int, dict[str, str]], int]:
    """The file's bytes, the quarantine reason of each quarantined record (by row number), some loaded
    values to check (row number -> column -> value) and the number of records."""
    parts: list[bytes] = [(HEADER + "\n").encode("gb18030")]
    quarantined: dict[int, str] = {}
    values: dict[int, dict[str, str]] = {}
    n = 0

    def add(text: str | bytes, reason: str | None = None, check: dict[str, str] | None = None, end="\n"):
        nonlocal n
        n += 1
        parts.append((text + end).encode("gb18030") if isinstance(text, str) else text + end.encode())
        if reason:
            quarantined[n] = reason
        if check:
            values[n] = check

    for i in range(1, 6):
        add(row(i))
    parts.append(b"\n")  # a blank line is not a record
    add(row(6, address='=HYPERLINK("http://x")'), "formula")
    add(row(7, address='"杭州市\n上城区 ""东"" 7号"'), check={"address": '杭州市\n上城区 "东" 7号'})
    add(row(8).rsplit(",", 2)[0], "column_count_mismatch")
    add(row(9).encode("gb18030").replace("张三".encode("gb18030"), b"\xff\xfe"), "undecodable_bytes")
    utf8_record = row(10, name="欧阳建国", sex="M", address="杭州解放路口").encode("utf-8")
    utf8_record.decode(
        "gb18030"
    )  # decodes (to mojibake) without an invalid byte: only the evidence rule sees it
    add(utf8_record, "undecodable_bytes")  # a UTF-8 record
    add(HEADER, "repeated_header")
    add(row(12, id_=" "), "missing_key")
    add(row(13, name="张\x00三"), "invalid_characters")
    add(row(14, phone="+86 13800000000"), check={"phone": "+86 13800000000"})
    add(row(15) + ",", check={"registered_on": "2020-01-01", "name": "张三"})  # a trailing delimiter
    add(row(16, name="李四"), check={"name": "李四", "registered_on": "2020-01-01"}, end="\r\n")
    add(row(17, phone="-"), check={"phone": "-"})
    add(row(18, address="\ufeff解放路"), "invalid_characters")
    add(row(19, address="　+cmd|' /C calc'!A0"), "formula")  # after an ideographic space
    for i in range(20, 60):
        add(row(i), check={"id_number": f"33010219900101{i:04d}"} if i % 10 == 0 else None)
    add(row(60, address='"最后,一条'), "column_count_mismatch")  # an unclosed quote to the end of the file
    return b"".join(parts), quarantined, values, n


@pytest.mark.parametrize("block_bytes", [64, 150, 1000, 1 << 20])
def test_every_record_read_by_the_rules_whatever_the_block_size(block_bytes, tmp_path, monkeypatch):
    monkeypatch.setattr(csv_reader, "BLOCK_BYTES", block_bytes)
    data, quarantined, values, records = delivery()
    path = tmp_path / "household_registry_20261120.csv"
    path.write_bytes(data)
    batch = read_delivery(load_catalog().feed(FEED), path, path.name)

    assert batch.rows_received == records
    assert {q.row_number: q.reason for q in batch.quarantined} == quarantined
    loaded = batch.rows.to_pylist()
    assert [r["_row_number"] for r in loaded] == [i for i in range(1, records + 1) if i not in quarantined]
    by_number = {r["_row_number"]: r for r in loaded}
    for number, expected in values.items():
        assert {c: by_number[number][c] for c in expected} == expected, number
    raw = {q.row_number: q.raw_text for q in batch.quarantined}
    assert raw[6].startswith("330102199001010006,") and raw[6].endswith("\n")
    assert "\\xff\\xfe" in raw[9]  # undecodable bytes shown escaped
    assert raw[11] == HEADER + "\n"
    assert any("1 records end with a trailing delimiter" in w for w in batch.warnings)


def test_a_quoted_record_longer_than_a_block(tmp_path, monkeypatch):
    monkeypatch.setattr(csv_reader, "BLOCK_BYTES", 32)
    address = '"' + "\n".join(f"第{i}行" for i in range(40)) + '"'
    data = "\n".join([HEADER, row(1), row(2, address=address), row(3)]) + "\n"
    path = tmp_path / "household_registry_20261120.csv"
    path.write_bytes(data.encode("gb18030"))
    batch = read_delivery(load_catalog().feed(FEED), path, path.name)
    assert batch.rows.column("_row_number").to_pylist() == [1, 2, 3]
    assert batch.rows.column("address").to_pylist()[1] == address.strip('"')
    assert batch.quarantined == []


def test_a_large_delivery_waits_on_disk_and_loads_whole(tmp_path, monkeypatch):
    """Past SPILL_BYTES the rows go to a spill file (bounded memory); the warehouse still gets every row,
    in order, and the file is gone once the batch is."""
    import gc

    import duckdb

    from citybrain.ingest import batch as batch_module
    from citybrain.ingest.pipeline import ingest_files

    monkeypatch.setattr(csv_reader, "BLOCK_BYTES", 1000)
    monkeypatch.setattr(batch_module, "SPILL_BYTES", 1)
    monkeypatch.setenv("CITYBRAIN_DUCKDB_TEMP_DIR", str(tmp_path / "spill"))
    data, quarantined, _, records = delivery()
    landing = tmp_path / "landing"
    path = landing / "public_security" / "household_registry_20261120.csv"
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    feed = load_catalog().feed(FEED)

    batch = read_delivery(feed, path, path.name)
    assert isinstance(batch.rows, batch_module.SpilledRows)
    expected = [i for i in range(1, records + 1) if i not in quarantined]
    assert batch.rows.read_all().column("_row_number").to_pylist() == expected
    spill_file = batch.rows.path
    assert spill_file.exists()
    del batch
    gc.collect()
    assert not spill_file.exists()

    warehouse = tmp_path / "warehouse.duckdb"
    result = ingest_files(feed, landing, warehouse, None, "run-spill").raise_for_problems()
    assert (result.rows_loaded, result.rows_quarantined) == (len(expected), len(quarantined))
    with duckdb.connect(str(warehouse)) as con:
        numbers = [
            r[0] for r in con.execute("SELECT _row_number FROM raw.household_registry ORDER BY 1").fetchall()
        ]
    assert numbers == expected


def test_a_plain_line_longer_than_arrows_blocks(tmp_path):
    """A line of several MB (a value over the size limit, still a plain line) is split like any other."""
    data = "\n".join([HEADER, row(1), row(2, address="x" * 3_000_000), row(3)]) + "\n"
    path = tmp_path / "household_registry_20261120.csv"
    path.write_bytes(data.encode("gb18030"))
    batch = read_delivery(load_catalog().feed(FEED), path, path.name)
    assert batch.rows.column("_row_number").to_pylist() == [1, 3]
    assert [(q.row_number, q.reason) for q in batch.quarantined] == [(2, "field_too_large")]
