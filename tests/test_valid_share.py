"""citybrain_valid_share judges a whole-table raw feed on its latest delivery, each identifier once.

A database feed's raw table grows night by night (every version of every enrolment); checking all of it
again every night made the check cost more every night and let an old bad delivery fail every later
night. Over three nights of a warehouse built here (IDs made valid or invalid with python-stdnum, not with
the pipeline's functions): a bad first delivery, a clean second one (passes although a quarter of the table
is invalid), a third with 10 % invalid (fails, counting only its own rows). A pool table is still judged
whole.
"""

import duckdb
import pytest
from stdnum.cn import ric

from citybrain.quality.gx_duckdb import warehouse_batches
from citybrain.quality.suites import RunValues, rule_valid_share


def _id(n: int, valid: bool) -> str:
    body = f"330102{19800101 + n % 28:08d}{n % 1000:03d}"
    check = ric.calc_check_digit(body + "X")
    return body + (check if valid else ("0" if check != "0" else "1"))


def _deliver(con, batch: str, day: int, ids: list[str]) -> None:
    con.execute(
        "INSERT INTO raw.ingestion_log VALUES ('si_insured', 'loaded', ?, TIMESTAMPTZ '2026-11-01 02:00:00+08' "
        "+ to_days(?))",
        [batch, day],
    )
    con.executemany("INSERT INTO raw.si_insured VALUES (?, ?)", [[i, batch] for i in ids])


def _validate(path, dataset: str):
    values = RunValues(
        dataset=dataset, expected_columns={}, county_codes=[], county_extents={}, trailing_counts=[]
    )
    (expectation,) = rule_valid_share(values, None, column="id_number", kind="resident_id", min_share=0.95)
    with warehouse_batches(path) as batches:
        return batches.batch(f"SELECT * FROM {dataset}").validate(expectation)


@pytest.fixture
def warehouse(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(
            "CREATE SCHEMA raw; CREATE SCHEMA pool;"
            "CREATE TABLE raw.ingestion_log (feed_id VARCHAR, status VARCHAR, batch_id VARCHAR, "
            "finished_at TIMESTAMPTZ);"
            "CREATE TABLE raw.si_insured (id_number VARCHAR, _batch_id VARCHAR)"
        )
    return path


def test_latest_delivery_is_judged_not_all_of_history(warehouse):
    with duckdb.connect(str(warehouse)) as con:
        _deliver(con, "run-1", 0, [_id(n, valid=n % 2 == 0) for n in range(100)])  # half invalid
    first = _validate(warehouse, "raw.si_insured")
    assert not first.success and first.result["observed_value"] == 1
    assert first.result["details"]["unexpected_rows"] == [
        {"checked": 100, "invalid": 50, "invalid_share": 0.5}
    ]

    with duckdb.connect(str(warehouse)) as con:
        _deliver(con, "run-2", 1, [_id(n, valid=True) for n in range(100, 200)])
    assert _validate(warehouse, "raw.si_insured").success  # 50 of 200 in the table, none in the delivery

    with duckdb.connect(str(warehouse)) as con:
        _deliver(con, "run-3", 2, [_id(n, valid=n % 10 != 0) for n in range(200, 300)])
    third = _validate(warehouse, "raw.si_insured")
    assert not third.success
    assert third.result["details"]["unexpected_rows"] == [
        {"checked": 100, "invalid": 10, "invalid_share": 0.1}
    ]


def test_a_pool_table_is_judged_whole(warehouse):
    with duckdb.connect(str(warehouse)) as con:
        con.execute("CREATE TABLE pool.people (id_number VARCHAR)")
        con.executemany("INSERT INTO pool.people VALUES (?)", [[_id(n, valid=n >= 10)] for n in range(100)])
    result = _validate(warehouse, "pool.people")
    assert not result.success
    assert result.result["details"]["unexpected_rows"] == [
        {"checked": 100, "invalid": 10, "invalid_share": 0.1}
    ]
