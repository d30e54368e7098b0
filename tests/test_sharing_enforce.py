"""Grants enforced at the data: the caller's SQL is checked and every granted table wrapped in its slice,
run over the real published tier files (tests/access_lake.py: pool.dim_area open, pool.fct_visit
conditional with 20 visits, even visit numbers in 330106, odd ones in 330108)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from citybrain.access import audit
from citybrain.access.sql_guard import QueryRejected
from citybrain.sharing.enforce import enforce
from citybrain.sharing.grants import Grant
from citybrain.sharing.reader import Reader, ResultTooLarge
from tests.access_lake import access_lake

NOW = datetime(2026, 12, 2)


def grant(gid, table, tier, columns, rows=None, ends=None, revoked=None):
    column, values = rows if rows else (None, None)
    return Grant(gid, 1, 100 + gid, table, tier, tuple(columns), column, values, "api",
                 NOW - timedelta(days=1), ends or datetime(2099, 1, 1), revoked)  # fmt: skip


VISITS = grant(1, "pool.fct_visit", "conditional", ["area_code", "visit_no"], ("area_code", ("330106",)))
AREAS = grant(2, "pool.dim_area", "open", ["area_code", "area_name"])


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    with access_lake(tmp_path_factory.mktemp("sharing_enforce")) as home:
        yield home


@pytest.fixture
def reader(lake):
    return Reader("li_analyst", via="test")


def test_reads_only_granted_columns_and_rows(reader):
    result = reader.query("SELECT * FROM pool.fct_visit ORDER BY visit_no", [VISITS], 100)
    assert result.table.column_names == ["area_code", "visit_no"]  # SELECT * = the granted columns
    assert result.table.column("visit_no").to_pylist() == list(range(0, 20, 2))  # only 330106 rows
    assert set(result.table.column("area_code").to_pylist()) == {"330106"}


def test_joins_and_aggregates_see_only_the_slices(reader):
    result = reader.query(
        "SELECT d.area_name, count(*) AS visits FROM pool.fct_visit v JOIN dim_area d USING (area_code) "
        "GROUP BY ALL",
        [VISITS, AREAS],
        100,
    )
    assert result.table.to_pylist() == [{"area_name": "西湖区", "visits": 10}]
    records = audit.read_records()[-2:]
    assert sorted(r["grant_id"] for r in records) == [1, 2]
    assert {r["application_id"] for r in records} == {101, 102} and {r["rows"] for r in records} == {1}


@pytest.mark.parametrize(
    "sql, message",
    [
        ("SELECT person_pseudonym FROM pool.fct_visit", "not granted to you or does not exist"),
        ("SELECT visit_no FROM pool.fct_visit WHERE person_pseudonym = 'p1'", "not granted"),
        ("SELECT residents FROM pool.dim_area", "not granted"),
        ("SELECT * FROM pool.dim_person_raw", "not granted"),
        ("SELECT 1; SELECT 2", "exactly one statement"),
        ("SELECT * FROM read_csv('/etc/passwd')", "read_csv"),
        ("SELECT * FROM read_parquet('x.parquet')", "read_parquet"),
        ("SELECT getenv('HOME')", "getenv"),
        ("SELECT * FROM information_schema.columns", "not granted"),
        ("SELECT * FROM citybrain_conditional.pool.fct_visit", "catalog"),
        ("DROP TABLE pool.fct_visit", "only SELECT"),
        ("SELECT * FROM range(3)", "table functions"),
    ],
)
def test_reaching_outside_the_grant_is_refused_and_audited(reader, sql, message):
    with pytest.raises(QueryRejected, match=message):
        reader.query(sql, [VISITS, AREAS], 100)
    last = audit.read_records()[-1]
    assert (last["outcome"], last["sql"]) == ("rejected", sql)


def test_the_rewrite_wraps_tables_in_expressions_not_pasted_strings():
    hostile = grant(3, "pool.fct_visit", "conditional", ["visit_no"], ("area_code", ("x') OR (1=1",)))
    sql = enforce("SELECT visit_no FROM pool.fct_visit", {"pool.fct_visit": hostile}).sql
    # The value is one quoted literal; the WHERE stays one IN over the whole value.
    assert "IN ('x'') OR (1=1')" in sql


def test_a_hostile_filter_value_matches_nothing(reader):
    hostile = grant(3, "pool.fct_visit", "conditional", ["visit_no"], ("area_code", ("x') OR (1=1",)))
    assert reader.query("SELECT * FROM pool.fct_visit", [hostile], 100).table.num_rows == 0


def test_results_over_the_limit_are_refused_not_truncated(reader):
    with pytest.raises(ResultTooLarge, match="more than 5 rows"):
        reader.query("SELECT visit_no FROM pool.fct_visit", [VISITS], 5)
    assert reader.query("SELECT count(*) AS n FROM pool.fct_visit", [VISITS], 5).table.to_pylist() == [
        {"n": 10}
    ]
