"""An unpartitioned raw table is judged on its latest delivery (validate.batch_query), each identifier once.

A database feed's raw table grows night by night (every version of every enrolment); checking all of it
again every night made the check cost more every night and let an old bad delivery fail every later
night. Over four nights of a warehouse built here (IDs made valid or invalid with python-stdnum, not with
the pipeline's functions), through the batch the quality gate gives the insurance suite: a bad first
delivery, a clean second one (passes although a quarter of the table is invalid), a third with 10 %
invalid (fails, counting only its own rows), a quiet fourth (nothing new: the third is judged again, not an
empty delivery). A pool table is still judged whole.
"""

import duckdb
import pytest
from stdnum.cn import ric

from citybrain.quality.gx_duckdb import warehouse_batches
from citybrain.quality.suites import RunValues, load_suites, rule_valid_share
from citybrain.quality.validate import batch_query


def _id(n: int, valid: bool) -> str:
    body = f"330102{19800101 + n % 28:08d}{n % 1000:03d}"
    check = ric.calc_check_digit(body + "X")
    return body + (check if valid else ("0" if check != "0" else "1"))


def _deliver(con, batch: str, day: int, ids: list[str]) -> None:
    con.execute(
        "INSERT INTO raw.ingestion_log VALUES ('si_insured', 'loaded', ?, TIMESTAMPTZ '2026-11-01 02:00:00+08' "
        "+ to_days(?), ?)",
        [batch, day, len(ids)],
    )
    if ids:
        con.executemany("INSERT INTO raw.si_insured VALUES (?, ?)", [[i, batch] for i in ids])


def _validate(path, dataset: str):
    values = RunValues(
        dataset=dataset, expected_columns={}, county_codes=[], county_extents={}, trailing_counts=[]
    )
    (expectation,) = rule_valid_share(values, None, column="id_number", kind="resident_id", min_share=0.95)
    suites = [s for s in load_suites() if s.dataset == dataset]  # the project's suite where there is one
    query = batch_query(suites[0], None) if suites else f"SELECT * FROM {dataset}"
    with warehouse_batches(path) as batches:
        return batches.batch(query).validate(expectation)


@pytest.fixture
def warehouse(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(
            "CREATE SCHEMA raw; CREATE SCHEMA pool;"
            "CREATE TABLE raw.ingestion_log (feed_id VARCHAR, status VARCHAR, batch_id VARCHAR, "
            "finished_at TIMESTAMPTZ, rows_loaded BIGINT);"
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

    with duckdb.connect(str(warehouse)) as con:
        _deliver(con, "run-4", 3, [])  # a quiet night: the read found nothing new
    fourth = _validate(warehouse, "raw.si_insured")
    assert fourth.result["details"]["unexpected_rows"] == third.result["details"]["unexpected_rows"]


def test_a_pool_table_is_judged_whole(warehouse):
    with duckdb.connect(str(warehouse)) as con:
        con.execute("CREATE TABLE pool.people (id_number VARCHAR)")
        con.executemany("INSERT INTO pool.people VALUES (?)", [[_id(n, valid=n >= 10)] for n in range(100)])
    result = _validate(warehouse, "pool.people")
    assert not result.success
    assert result.result["details"]["unexpected_rows"] == [
        {"checked": 100, "invalid": 10, "invalid_share": 0.1}
    ]
