"""A failed dbt test holds back what is built from it; it does not stop the night (docs/POOL.md "Publication
per table").

Four nights through the real Dagster job on a small demo city:

1. every delivery on time: everything published, nothing stale;
2. the social insurance database gives one enrolment an insurance type no one has declared (390): the raw
   expectation on known types is a warning, so the row is fetched; dbt's ``accepted_values`` test on
   ``fct_insurance_enrolment.insurance_type`` (error severity) fails. The run succeeds;
   ``fct_insurance_enrolment`` and the pool tables built from it keep the previous version and are stale;
   every other table moves on;
3. nothing new from the bureau: the row still has the odd type, the test fails again, the tables stay stale
   since night 2;
4. the bureau corrects the row: nothing is stale, and the enrolment is published with the corrected type.

Which tables are built from ``fct_insurance_enrolment`` is read from dbt's own ``child_map``; the row is
changed in the department's SQLite database with the sqlite3 module, as the bureau's system would. Then, without dbt: a model dbt skips (built
from one whose test failed) gets an output, so Dagster does not skip what comes after it.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3

import duckdb
import pytest
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetSpec,
    DagsterInstance,
    asset,
    materialize,
    multi_asset,
)

from assets.dbt.failed_tests import NOT_REBUILT, outputs_not_built
from assets.dbt_project import citybrain_dbt_project
from citybrain import staleness
from citybrain.lineage.trace import format_trace, trace
from citybrain.publication import tier_path
from orchestration.status import collect_status
from tests.demo_lake import demo_lake, run_nightly

COUNTIES = ["330106", "320505"]
DAYS = ["2026-10-05", "2026-10-06", "2026-10-07", "2026-10-08"]
FAILING_MODEL = "model.citybrain.fct_insurance_enrolment"
ODD_TYPE, RIGHT_TYPE = "390", "310"  # 390 is not one of the declared 险种 codes (accepted_values)


def _built_from(unique_id: str) -> set[str]:
    """The pool tables built from ``unique_id`` (itself included), from dbt's child map."""
    manifest = json.loads(citybrain_dbt_project.manifest_path.read_text(encoding="utf-8"))
    seen, frontier = {unique_id}, [unique_id]
    while frontier:
        for child in manifest["child_map"].get(frontier.pop(), []):
            if child not in seen:
                seen.add(child)
                frontier.append(child)
    nodes = manifest["nodes"]
    return {nodes[u]["name"] for u in seen if u in nodes and nodes[u].get("schema") == "pool"}


def _live() -> dict:
    """Per published pool table its rows (sorted), and the holds of both tiers."""
    state: dict = {"stale": {}}
    for tier in ("open", "conditional"):
        with duckdb.connect(str(tier_path(tier)), read_only=True) as con:
            for (table,) in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'pool'"
            ).fetchall():
                rows = con.execute(f'SELECT * FROM pool."{table}"').fetchall()
                state[table] = sorted(rows, key=lambda r: json.dumps(r, default=str))
            state["stale"] |= staleness.read_holds(con)
    return state


def _published_types() -> dict[str, str]:
    """insured_id -> insurance_type in the published fct_insurance_enrolment."""
    for tier in ("open", "conditional"):
        with duckdb.connect(str(tier_path(tier)), read_only=True) as con:
            if con.execute(
                "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'pool' "
                "AND table_name = 'fct_insurance_enrolment'"
            ).fetchone()[0]:
                return dict(
                    con.execute(
                        "SELECT insured_id, insurance_type FROM pool.fct_insurance_enrolment"
                    ).fetchall()
                )
    raise AssertionError("pool.fct_insurance_enrolment is not published")


def _set_type(database, insured_id: str, insurance_type: str, updated_at: str) -> None:
    """The bureau's system changes one enrolment (and its update time, which the nightly's cursor follows)."""
    with contextlib.closing(sqlite3.connect(database)) as con, con:
        con.execute(
            "UPDATE si_insured SET insurance_type = ?, updated_at = ? WHERE insured_id = ?",
            [insurance_type, updated_at, insured_id],
        )


@pytest.fixture(scope="module")
def nights(tmp_path_factory):
    home = tmp_path_factory.mktemp("dbt_test_holds")
    with demo_lake(home, COUNTIES, DAYS, residents=1500) as _summary, DagsterInstance.ephemeral() as instance:
        database = home / "landing" / "hrss" / "social_insurance.sqlite"
        record: dict = {}
        for night, day in enumerate(DAYS, start=1):
            if night == 2:  # one published enrolment of type 310 gets the odd type
                changed = next(i for i, t in sorted(record[1]["types"].items()) if t == RIGHT_TYPE)
                record["changed"] = changed
                _set_type(database, changed, ODD_TYPE, "2026-10-09 08:00:00")
            if night == 4:  # the bureau corrects it
                _set_type(database, record["changed"], RIGHT_TYPE, "2026-10-10 08:00:00")
            result = run_nightly(day, day, instance=instance)
            record[night] = {
                "result": result,
                "failures": [
                    f"{e.step_key}: {e.step_failure_data.error.message}"
                    for e in result.all_events
                    if e.is_step_failure and e.step_failure_data.error
                ],
                "state": _live(),
                "types": _published_types(),
                "status": collect_status(),
                "trace": format_trace(trace("pool.fct_insurance_enrolment")),
            }
        yield record


def test_night_1_publishes_everything(nights):
    assert nights[1]["result"].success
    assert nights[1]["state"]["stale"] == {}
    assert ODD_TYPE not in nights[1]["types"].values()


def test_night_2_holds_back_only_what_is_built_from_the_failing_model(nights):
    night = nights[2]
    assert night["result"].success, ("a failed dbt test no longer fails the night", night["failures"])
    expected = _built_from(FAILING_MODEL)
    assert {"fct_insurance_enrolment", "ind_district_monthly"} <= expected  # the indicators count the insured
    stale = night["state"]["stale"]
    assert set(stale) == expected
    for table in expected:  # the previous content, unchanged
        assert night["state"][table] == nights[1]["state"][table], table
        assert "pool.fct_insurance_enrolment" in stale[table].failed_checks
    assert night["types"][nights["changed"]] == RIGHT_TYPE
    assert night["state"]["fct_hotline_ticket"] != nights[1]["state"]["fct_hotline_ticket"]  # moved on
    assert set(night["status"]["published"]["stale_tables"]) == {f"pool.{t}" for t in expected}
    # citybrain trace names the failed test beside the expectations of the run.
    failed = [line for line in night["trace"].splitlines() if "FAILED" in line]
    assert any("accepted_values_fct_insurance_enrolment_insurance_type" in line for line in failed), night[
        "trace"
    ]
    assert not any("FAILED" in line and "dbt test" in line for line in nights[1]["trace"].splitlines())


def test_night_3_still_holds_them_since_night_2(nights):
    night, before = nights[3], nights[2]
    assert night["result"].success, night["failures"]
    assert set(night["state"]["stale"]) == set(before["state"]["stale"])
    for table, hold in night["state"]["stale"].items():
        assert hold.stale_since == before["state"]["stale"][table].stale_since
        assert night["state"][table] == nights[1]["state"][table]


def test_night_4_the_corrected_row_releases_them(nights):
    night = nights[4]
    assert night["result"].success, night["failures"]
    assert night["state"]["stale"] == {}
    assert ODD_TYPE not in night["types"].values()
    assert night["types"] == nights[1]["types"]


def test_a_model_dbt_skipped_gets_an_output_so_the_steps_after_it_run():
    """Without an output for a model dbt skipped, Dagster skips every step downstream of it (publication)."""

    @multi_asset(
        specs=[AssetSpec("tested"), AssetSpec("skipped_by_dbt", skippable=True)],
        check_specs=[AssetCheckSpec("accepted_values_tested_status", asset="tested", blocking=True)],
        can_subset=True,
    )
    def build(context):
        from dagster import Output

        events = [  # the model whose test failed was built, and its failed test reported (as WARN)
            Output(None, output_name="tested"),
            AssetCheckResult(
                asset_key="tested",
                check_name="accepted_values_tested_status",
                passed=False,
                severity=AssetCheckSeverity.WARN,
            ),
        ]
        yield from events
        yield from outputs_not_built(context, events, ["accepted_values_tested_status"])

    @asset(deps=["skipped_by_dbt"])
    def publication() -> None:
        return None

    result = materialize([build, publication])
    assert result.success
    assert result.output_for_node("publication") is None  # it ran
    (skipped,) = [
        e.step_materialization_data.materialization
        for e in result.get_asset_materialization_events()
        if e.step_materialization_data.materialization.asset_key.path == ["skipped_by_dbt"]
    ]
    assert "accepted_values_tested_status" in skipped.metadata[NOT_REBUILT].value


def test_without_that_output_dagster_skips_the_steps_after_it():
    """The premise of the test above, on Dagster itself."""

    @multi_asset(specs=[AssetSpec("tested"), AssetSpec("skipped_by_dbt", skippable=True)], can_subset=True)
    def build():
        from dagster import Output

        yield Output(None, output_name="tested")

    @asset(deps=["skipped_by_dbt"])
    def publication() -> None:
        return None

    result = materialize([build, publication])
    assert "publication" not in {e.step_key for e in result.all_events if e.is_step_success}
