"""Suites validated side by side (validate.LANES): each lane's validations give what one lane gives.

Every lane has a DuckDB connection of its own to the same file, and the connections share the domain
functions the first lane registered (gx_duckdb._datasource): a rule that calls a Python function
(the employer USCC check of pool.fct_insurance_enrolment, python-stdnum's verdict worked out here) must
report the same rows in the second lane, and the runs come back in the order they were asked for.
"""

from __future__ import annotations

import duckdb
from stdnum.cn import uscc

from citybrain.quality.suites import load_suites
from citybrain.quality.validate import _split, expected_columns, validate_suites

RULE = "enterprise_key is a valid USCC, present exactly when employer_in_registry."


def _table(con, suite, rows: list[tuple] = (), columns: str = "") -> None:
    declared = ", ".join(f'"{name}" {kind}' for name, kind in expected_columns(suite).items())
    con.execute(f"CREATE TABLE {suite.dataset} ({declared})")
    if rows:
        marks = ", ".join("?" for _ in rows[0])
        con.executemany(f"INSERT INTO {suite.dataset} ({columns}) VALUES ({marks})", rows)


def test_two_lanes_report_what_one_lane_reports_in_the_order_asked(lake):
    good = "91330100MA27XK0L1" + uscc.calc_check_digit("91330100MA27XK0L1")
    bad = good[:-1] + next(c for c in "0123456789ABCDEFGHJKLMNPQRTUWXY" if c != good[-1])
    rows = [(f"ok{i}", good, True) for i in range(30)] + [("bad-1", bad, True), ("bad-2", bad, True)]
    suites = {s.dataset: s for s in load_suites()}
    enrolment, district = suites["pool.fct_insurance_enrolment"], suites["pool.dim_district"]
    warehouse = lake / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("CREATE SCHEMA pool")
        _table(con, enrolment, rows, "insured_id, enterprise_key, employer_in_registry")
        _table(con, district)  # empty: its row-count expectation fails, in whichever lane

    asked = [(enrolment, [None]), (enrolment, [None]), (district, [None])]
    side_by_side = validate_suites(warehouse, asked, lanes=2)
    one_by_one = validate_suites(warehouse, asked, lanes=1)

    assert [r.suite.dataset for r in side_by_side] == [s.dataset for s, _ in asked]
    for run in side_by_side[
        :2
    ]:  # one in each lane: the two costliest (or, all equal, the first two) go apart
        (outcome,) = [o for o in run.outcomes if o.description == RULE]
        assert outcome.error is None and not outcome.success
        assert sorted(e["insured_id"] for e in outcome.examples) == ["bad-1", "bad-2"]
    assert not [o for r in side_by_side for o in r.outcomes if o.error]

    def summary(runs):
        return [
            (r.suite.dataset, o.rule, o.column, o.success, o.unexpected_count, o.observed)
            for r in runs
            for o in r.outcomes
        ]

    assert summary(side_by_side) == summary(one_by_one)


def test_the_costliest_validations_go_to_different_lanes():
    # Costs 5, 1, 1, 4: 5 to lane 0, then 4 to the emptier lane 1, then each 1 to the emptier lane.
    assert _split([5.0, 1.0, 1.0, 4.0], 2) == [0, 1, 0, 1]
    assert _split([2.0, 3.0], 1) == [0, 0]
