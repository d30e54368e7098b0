"""The blocking rule of pool.fct_insurance_enrolment on its employer: ``enterprise_key`` is a valid USCC,
present exactly when ``employer_in_registry``. The suite checks each distinct key once; this runs the real
suite on a crafted table and names the rows it must and must not report, USCCs judged by python-stdnum."""

from __future__ import annotations

import duckdb
from stdnum.cn import uscc

from citybrain.quality.suites import load_suites
from citybrain.quality.validate import expected_columns, validate_suites

RULE = "enterprise_key is a valid USCC, present exactly when employer_in_registry."


def _valid_uscc(body: str) -> str:
    code = body + uscc.calc_check_digit(body)
    uscc.validate(code)
    return code


def _wrong_check_character(code: str) -> str:
    wrong = next(c for c in "0123456789ABCDEFGHJKLMNPQRTUWXY" if c != code[-1])
    return code[:-1] + wrong


def test_each_bad_enrolment_is_reported_once_and_good_ones_never(lake):
    good, other = _valid_uscc("91330100MA27XK0L1"), _valid_uscc("91330106MA2B0Q1T2")
    bad = _wrong_check_character(good)
    rows = [  # (insured_id, enterprise_key, employer_in_registry, reported)
        *[(f"ok{i}", good if i % 2 else other, True, False) for i in range(40)],
        ("no-employer", None, False, False),
        ("bad-check-1", bad, True, True),
        ("bad-check-2", bad, True, True),  # the same bad key twice: both enrolments reported
        ("flag-without-key", None, True, True),
        ("key-without-flag", good, False, True),
    ]
    suite = next(s for s in load_suites() if s.dataset == "pool.fct_insurance_enrolment")
    columns = ", ".join(f'"{name}" {kind}' for name, kind in expected_columns(suite).items())
    warehouse = lake / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("CREATE SCHEMA pool")
        con.execute(f"CREATE TABLE pool.fct_insurance_enrolment ({columns})")
        con.executemany(
            "INSERT INTO pool.fct_insurance_enrolment (insured_id, enterprise_key, employer_in_registry) "
            "VALUES (?, ?, ?)",
            [row[:3] for row in rows],
        )
    (run,) = validate_suites(warehouse, [(suite, [None])])
    (outcome,) = [o for o in run.outcomes if o.description == RULE]
    expected = sorted(r[0] for r in rows if r[3])
    assert not outcome.success and outcome.error is None
    assert outcome.unexpected_count == len(expected)
    assert sorted(e["insured_id"] for e in outcome.examples) == expected
