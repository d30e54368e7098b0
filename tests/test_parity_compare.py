"""The parity comparison finds what differs (citybrain/scale/parity.py): rows, text, dates, floats
beyond the tolerance, columns — and accepts what is the same up to row order and float noise."""

from __future__ import annotations

import duckdb
import pytest

from citybrain.scale.parity import FLOAT_TOLERANCE, TableParity, compare_table, write_report


@pytest.fixture
def con():
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE a AS SELECT * FROM (VALUES ('x', DATE '2026-11-01', 1, 0.1), ('y', DATE '2026-11-02', 2, 1e6), "
        "('z', NULL, 3, NULL)) t(k, d, n, v)"
    )
    yield con
    con.close()


def _variant(con, sql: str) -> TableParity:
    con.execute("CREATE OR REPLACE TABLE b AS SELECT * FROM a")
    if sql:
        con.execute(sql)
    return compare_table(con, "t", "a", "b")


def test_same_content_in_another_order_and_integer_width_is_equal(con):
    con.execute(
        "CREATE TABLE b AS SELECT k, d, CAST(n AS BIGINT) AS n, v + v * 1e-12 AS v FROM a ORDER BY k DESC"
    )
    result = compare_table(con, "t", "a", "b")
    assert result.equal, result.problems
    assert result.max_abs_diff["v"] < 1e6 * 2 * FLOAT_TOLERANCE


@pytest.mark.parametrize(
    "change, expected",
    [
        ("UPDATE b SET k = 'q' WHERE k = 'x'", "content of the non-float columns differs"),
        ("UPDATE b SET d = DATE '2026-11-03' WHERE k = 'x'", "content of the non-float columns differs"),
        ("UPDATE b SET d = DATE '2026-11-03' WHERE k = 'z'", "content of the non-float columns differs"),
        ("DELETE FROM b WHERE k = 'y'", "row counts differ"),
        ("INSERT INTO b SELECT * FROM a WHERE k = 'y'", "row counts differ"),
        ("UPDATE b SET v = v + 1e-3 WHERE k = 'x'", "v: 1 values differ beyond the tolerance"),
        ("UPDATE b SET v = 0 WHERE k = 'z'", "v: 1 values differ beyond the tolerance"),
        ("ALTER TABLE b ADD COLUMN extra INTEGER", "columns differ"),
    ],
)
def test_each_kind_of_difference_is_reported(con, change, expected):
    result = _variant(con, change)
    assert not result.equal
    assert any(p.startswith(expected) for p in result.problems), result.problems


def test_the_report_says_which_tables_differ(con, tmp_path):
    same = _variant(con, "")
    different = _variant(con, "UPDATE b SET v = 5 WHERE k = 'x'")
    report = write_report([same, different], tmp_path, {"lake": "x"})
    assert report["all_equal"] is False
    assert [t["equal"] for t in report["tables"]] == [True, False]
    table = (tmp_path / "parity.md").read_text(encoding="utf-8")
    assert "| yes |" in table and "NO: v: 1 values differ" in table
