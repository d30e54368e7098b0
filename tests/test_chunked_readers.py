"""The Parquet and JSON Lines readers hand rows to the builder a chunk at a time: over several chunks, every
row keeps its row number and its order, each bad row is quarantined with its own raw text, and received =
loaded + quarantined holds whatever chunk a row fell in. Expected values are written out by hand."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from citybrain.ingest import file_readers
from citybrain.ingest.file_readers import read_delivery


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(file_readers, "ROWS_PER_CHUNK", 4)
    return 4


def test_parquet_rows_over_chunks_keep_their_numbers_and_raw_text(tmp_path, catalog, small_chunks):
    feed = catalog.feed("operator_b_presence")  # stat_date, hour, grid_id, pop, is_masked; key grid_id, hour
    grids = [f"g{i}" for i in range(11)]
    grids[2] = None  # missing key, in the first chunk
    grids[5] = "   "  # blank key, in the second
    grids[9] = "=HYPERLINK(1)"  # a formula, in the third
    table = pa.table(
        {
            "stat_date": ["20261120"] * 11,
            "hour": pa.array(range(11), pa.int16()),
            "grid_id": grids,
            "pop": pa.array([1.0, 2.5, None, 3.0, 1e20, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0], pa.float64()),
            "is_masked": pa.array([True, False] * 5 + [None], pa.bool_()),
            "extra": pa.array([[1, 2]] * 11, pa.list_(pa.int8())),  # not a feed column: raw text only
        }
    )
    path = tmp_path / "presence.parquet"
    pq.write_table(table, path, row_group_size=3)  # row groups that do not line up with the chunks
    batch = read_delivery(feed, path, "presence.parquet")
    assert (batch.rows_received, batch.rows_loaded, batch.rows_quarantined) == (11, 8, 3)
    assert [(q.row_number, q.reason) for q in batch.quarantined] == [
        (3, "missing_key"),
        (6, "missing_key"),
        (10, "formula"),
    ]
    assert json.loads(batch.quarantined[0].raw_text) == {
        "stat_date": "20261120",
        "hour": "2",
        "grid_id": None,
        "pop": None,
        "is_masked": "true",
        "extra": "[1, 2]",
    }
    assert json.loads(batch.quarantined[2].raw_text)["grid_id"] == "=HYPERLINK(1)"
    rows = batch.rows.select(["_row_number", "grid_id", "hour", "pop", "is_masked"]).to_pylist()
    assert [r["_row_number"] for r in rows] == [1, 2, 4, 5, 7, 8, 9, 11]
    assert [(r["grid_id"], r["hour"], r["pop"], r["is_masked"]) for r in rows[:4]] == [
        ("g0", "0", "1", "true"),
        ("g1", "1", "2.5", "false"),
        ("g3", "3", "3", "false"),
        ("g4", "4", "1e+20", "true"),
    ]
    assert rows[-1] == {"_row_number": 11, "grid_id": "g10", "hour": "10", "pop": "11", "is_masked": None}


def test_parquet_dates_and_times_are_iso_text(tmp_path, catalog, small_chunks):
    feed = catalog.feed("operator_b_presence")
    start = datetime(2026, 11, 20, 8, 30)
    table = pa.table(
        {
            "stat_date": pa.array([date(2026, 11, 20) + timedelta(days=i) for i in range(6)], pa.date32()),
            "hour": pa.array(
                [start + timedelta(hours=i, microseconds=i) for i in range(6)], pa.timestamp("us")
            ),
            "grid_id": [f"g{i}" for i in range(6)],
            "pop": pa.array(range(6), pa.int64()),
            "is_masked": pa.array(range(6), pa.int8()),
        }
    )
    path = tmp_path / "dated.parquet"
    pq.write_table(table, path)
    rows = read_delivery(feed, path, "dated.parquet").rows.to_pylist()
    assert [(r["stat_date"], r["hour"]) for r in rows[:2]] + [(rows[5]["stat_date"], rows[5]["hour"])] == [
        ("2026-11-20", "2026-11-20 08:30:00"),
        ("2026-11-21", "2026-11-20 09:30:00.000001"),
        ("2026-11-25", "2026-11-20 13:30:00.000005"),
    ]


def test_jsonl_rows_over_chunks_keep_their_line_numbers(tmp_path, catalog, small_chunks):
    feed = catalog.feed("legal_entities")  # key uscc

    def entity(n: int, **changes) -> str:
        record = {column: f"{column}-{n}" for column in feed.column_names}
        record["registered_capital"] = 100.5  # delivered as 100.50: the reader keeps that text
        return json.dumps(record | changes, ensure_ascii=False).replace(": 100.5,", ": 100.50,")

    lines = [entity(n) for n in range(1, 13)]
    lines[1] = '{"uscc": "broken'  # line 2: not JSON
    lines[4] = entity(5, uscc="")  # line 5: blank key
    lines[6] = ""  # line 7: blank line, not a record
    lines[8] = entity(9, name="@SUM(A1)")  # line 9: a formula
    lines[10] = entity(11, registered_capital={"b": 1, "a": [2]})  # line 11: an object value becomes JSON
    path = tmp_path / "legal_entities.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8")
    batch = read_delivery(feed, path, "legal_entities.jsonl")
    assert (batch.rows_received, batch.rows_loaded, batch.rows_quarantined) == (11, 8, 3)
    assert [(q.row_number, q.reason) for q in batch.quarantined] == [
        (2, "invalid_json"),
        (5, "missing_key"),
        (9, "formula"),
    ]
    assert batch.quarantined[2].raw_text == lines[8]
    rows = batch.rows.select(["_row_number", "uscc", "registered_capital"]).to_pylist()
    assert [r["_row_number"] for r in rows] == [1, 3, 4, 6, 8, 10, 11, 12]
    assert rows[0] == {"_row_number": 1, "uscc": "uscc-1", "registered_capital": "100.50"}
    assert rows[6] == {"_row_number": 11, "uscc": "uscc-11", "registered_capital": '{"a": ["2"], "b": "1"}'}
