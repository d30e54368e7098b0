"""Publication per table, not all or nothing (docs/POOL.md "Publication per table").

The rules on a hand-written manifest first (expected holds written from the rules' statement, not computed),
then four nights through the real Dagster job on a small demo city:

1. every delivery on time: everything published, nothing stale;
2. operator A's OD file of the day is late: the blocking "partition present" check of ``raw.operator_a_od``
   fails; the pool tables built from it keep the previous version and are stale (with why and since when),
   every other table is published with the new day; ``citybrain status`` and the run's alert name them;
3. everything on time for the next day: the OD tables are published with the new day, the late day held back;
4. the late file arrives and its day is run again: the day is released, nothing is stale.

Which tables are built from the late feed is read from dbt's own ``child_map`` in the manifest, not from the
module under test; which days each table holds comes from the delivered files' days.
"""

from __future__ import annotations

import json

import duckdb
import pytest
from dagster import DagsterInstance

from assets.dbt_project import citybrain_dbt_project
from citybrain import staleness
from citybrain.publication import list_publications, tier_path
from orchestration.alerts import alert_text, build_stale_alert
from orchestration.status import collect_status
from tests.demo_lake import demo_lake, run_nightly

# --- the rules, on a hand-written manifest ------------------------------------------------------------


def _node(name: str, parents: list[str], daily: bool = False, schema: str = "pool") -> dict:
    config = (
        {"materialized": "incremental", "unique_key": "stat_date"} if daily else {"materialized": "table"}
    )
    return {
        "unique_id": f"model.p.{name}",
        "resource_type": "model",
        "name": name,
        "schema": schema,
        "tags": ["daily"] if daily else [],
        "config": config,
        "depends_on": {"nodes": parents},
    }


MANIFEST = {
    "sources": {
        "source.p.raw.trips": {"resource_type": "source", "source_name": "raw", "name": "trips"},
        "source.p.raw.registry": {"resource_type": "source", "source_name": "raw", "name": "registry"},
    },
    "nodes": {
        n["unique_id"]: n
        for n in (
            _node("stg_trips", ["source.p.raw.trips"], schema="staging"),
            _node("fct_trips", ["model.p.stg_trips"], daily=True),
            _node("dim_people", ["source.p.raw.registry"]),
            _node("ind_monthly", ["model.p.fct_trips", "model.p.dim_people"]),
            _node("dim_other", []),
        )
    },
}
TABLES = ["fct_trips", "dim_people", "ind_monthly", "dim_other"]


def _decide(failures, previous, days, live="v1"):
    return staleness.decide(TABLES, MANIFEST, "pool", failures, previous, days, f"t-{days[0]}", live)


def test_a_failed_daily_feed_holds_back_what_is_built_from_it_and_nothing_else():
    holds = _decide({"raw.trips": {"D2"}}, {}, ["D2"])
    assert sorted(holds) == ["fct_trips", "ind_monthly"]
    assert holds["fct_trips"].whole and holds["fct_trips"].held_days == ["D2"]
    assert holds["fct_trips"].failed_checks == ["raw.trips[D2]"]
    assert holds["ind_monthly"].whole and holds["ind_monthly"].held_days == []  # not daily: whole
    assert holds["fct_trips"].stale_since == "t-D2" and holds["fct_trips"].kept_version == "v1"


def test_held_days_stay_held_until_a_run_of_that_day_passes():
    night2 = _decide({"raw.trips": {"D2"}}, {}, ["D2"], live="v1")
    night3 = _decide({}, night2, ["D3"], live="v2")
    assert not night3["fct_trips"].whole and night3["fct_trips"].held_days == ["D2"]
    assert night3["fct_trips"].stale_since == "t-D2", "since the first night it was held"
    # The indicators were rebuilt from the warehouse's rows of the held day: held back whole, still since night 2,
    # keeping the content of the version before the failure.
    assert night3["ind_monthly"].whole and night3["ind_monthly"].stale_since == "t-D2"
    assert night3["ind_monthly"].kept_version == "v1"
    night4 = _decide({}, night3, ["D2"], live="v3")  # the late day delivered and run again
    assert night4 == {}


def test_a_registry_failure_holds_every_day_of_the_run():
    holds = _decide({"raw.registry": {None}}, {}, ["D5", "D6"])
    assert sorted(holds) == ["dim_people", "ind_monthly"]
    assert holds["dim_people"].failed_checks == ["raw.registry"]


def test_a_failure_of_the_table_itself_holds_it_back():
    holds = _decide({"pool.dim_other": {None}}, {}, ["D1"])
    assert sorted(holds) == ["dim_other"]


# --- four nights through Dagster --------------------------------------------------------------------------

COUNTIES = ["330106", "330108", "320505"]
DAYS = ["2026-10-05", "2026-10-06", "2026-10-07"]
LATE_FILE = "operators/cmcc/od/{day}/od_district.csv.gz"
DAY_COLUMNS = {"fct_od_daily": "stat_date", "fct_hotline_ticket": "received_date"}


def _snapshot() -> dict:
    """What each tier's live version holds: per table its rows (sorted), and meta.stale_tables."""
    state = {}
    for tier in ("open", "conditional"):
        with duckdb.connect(str(tier_path(tier)), read_only=True) as con:
            tables = [t for (t,) in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'pool'").fetchall()]  # fmt: skip
            for table in tables:
                state[table] = sorted(
                    con.execute(f'SELECT * FROM pool."{table}"').fetchall(),
                    key=lambda r: json.dumps(r, default=str),
                )
            state[f"stale:{tier}"] = {h.table: h for h in staleness.read_holds(con).values()}
    return state


def _built_from(feed: str) -> set[str]:
    """Pool tables downstream of raw.<feed>, from dbt's own child map, except those declared never held back."""
    manifest = json.loads(citybrain_dbt_project.manifest_path.read_text(encoding="utf-8"))
    children, seen = manifest["child_map"], set()
    frontier = [uid for uid in manifest["sources"] if uid.endswith(f".raw.{feed}")]
    while frontier:
        uid = frontier.pop()
        for child in children.get(uid, []):
            if child not in seen:
                seen.add(child)
                frontier.append(child)
    nodes = manifest["nodes"]
    return {
        nodes[u]["name"]
        for u in seen
        if u in nodes
        and nodes[u].get("schema") == "pool"
        and nodes[u]["config"].get("meta", {}).get("hold_back") is not False  # the scorecards report it
    }


def _days(table: str, column: str) -> set[str]:
    """The days a published table has rows for."""
    return {str(row[0]) for row in _published_any(table, f'SELECT DISTINCT "{column}" FROM pool."{table}"')}


def _published_any(table: str, sql: str) -> list[tuple]:
    for tier in ("open", "conditional"):
        with duckdb.connect(str(tier_path(tier)), read_only=True) as con:
            if con.execute(
                "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'pool' AND table_name = ?", [table]
            ).fetchone()[0]:
                return con.execute(sql).fetchall()
    raise AssertionError(f"pool.{table} is not published")


@pytest.fixture(scope="module")
def nights(tmp_path_factory):
    home = tmp_path_factory.mktemp("stale")
    with demo_lake(home, COUNTIES, DAYS, residents=2000) as _summary, DagsterInstance.ephemeral() as instance:
        late = home / "landing" / LATE_FILE.format(day=DAYS[1].replace("-", ""))
        held_aside = home / "late_od.csv.gz"
        late.rename(held_aside)  # operator A's file of the second day arrives late
        record = {}
        for night, day in enumerate([DAYS[0], DAYS[1], DAYS[2], DAYS[1]], start=1):
            if night == 4:
                held_aside.rename(late)
            result = run_nightly(day, day, instance=instance)
            record[night] = {
                "result": result,
                "failures": [
                    e.step_failure_data.error.message
                    for e in result.all_events
                    if e.is_step_failure and e.step_failure_data.error
                ],
                "state": _snapshot(),
                "days": {t: _days(t, DAY_COLUMNS[t]) for t in DAY_COLUMNS},
                "status": collect_status(),
                "alert": build_stale_alert(instance, instance.get_run_by_id(result.run_id)),
            }
        record["publications"] = list_publications()
        yield record


def test_night_1_publishes_everything_fresh(nights):
    assert nights[1]["result"].success
    assert nights[1]["state"]["stale:open"] == {} and nights[1]["state"]["stale:conditional"] == {}
    assert nights[1]["alert"] is None
    assert nights[1]["days"]["fct_od_daily"] == {DAYS[0]}


def test_night_2_holds_back_only_the_tables_built_from_the_late_feed(nights):
    night = nights[2]
    assert night["result"].success, ("a late feed no longer fails the night", night["failures"])
    stale = night["state"]["stale:open"] | night["state"]["stale:conditional"]
    published_now = {t for t in night["state"] if not t.startswith("stale:")}
    expected = _built_from("operator_a_od") & published_now
    assert expected, "the demo's OD tables are built from operator A's OD feed"
    assert set(stale) == expected
    for table in expected:  # the previous version's content, unchanged
        assert night["state"][table] == nights[1]["state"][table], table
        assert "raw.operator_a_od[" + DAYS[1] + "]" in stale[table].failed_checks
    # Every other table moved on: the hotline facts carry the new day.
    assert night["days"]["fct_hotline_ticket"] == {DAYS[0], DAYS[1]}
    assert night["days"]["fct_od_daily"] == {DAYS[0]}
    # The scheduler sees them: status and the run's alert.
    status_stale = night["status"]["published"]["stale_tables"]
    assert set(status_stale) == {f"pool.{t}" for t in expected}
    alert = night["alert"]
    assert alert["alert"] == "stale_tables"
    assert {s["table"] for s in alert["stale_tables"]} == {f"pool.{t}" for t in expected}
    assert "fct_od_daily" in alert_text(alert)


def test_night_3_publishes_the_new_day_and_keeps_the_late_day_back(nights):
    night = nights[3]
    assert night["result"].success, night["failures"]
    assert night["days"]["fct_od_daily"] == {DAYS[0], DAYS[2]}
    stale = night["state"]["stale:open"] | night["state"]["stale:conditional"]
    assert not stale["fct_od_daily"].whole and stale["fct_od_daily"].held_days == [DAYS[1]]
    since = (nights[2]["state"]["stale:open"] | nights[2]["state"]["stale:conditional"])["fct_od_daily"]
    assert stale["fct_od_daily"].stale_since == since.stale_since


def test_night_4_releases_the_late_day_once_it_is_rerun(nights):
    night = nights[4]
    assert night["result"].success, night["failures"]
    assert night["state"]["stale:open"] == {} and night["state"]["stale:conditional"] == {}
    assert night["days"]["fct_od_daily"] == set(DAYS)
    assert night["alert"] is None
    assert [p.get("stale", {}) == {} for p in nights["publications"]] == [True, False, False, True]
