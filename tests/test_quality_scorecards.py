"""Quality scorecards: built by the nightly job on a small demo lake, they agree with the ingestion log,
the quarantine and the check results of the run; lateness follows the documented rule (dbt_project/models/
pool/quality/_quality_pool.yml) when deliveries are made late or go missing."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from assets.dbt_project import citybrain_dbt_project
from citybrain.catalog import load_catalog
from tests.demo_lake import demo_lake, run_nightly

DAYS = ["2026-11-19", "2026-11-20"]
COUNTIES = ["330106", "320505"]
SCORECARDS = ["quality_scorecard_feed_daily", "quality_scorecard_daily", "quality_scorecard_reasons", "quality_scorecard_trend"]  # fmt: skip
DAY = "coalesce(CAST(partition_key AS DATE), CAST(timezone('Asia/Shanghai', started_at) AS DATE))"


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    """The nightly job over two days in two runs: ingestion (with the raw checks and the ingestion log's
    staging view), then the scorecards (with their checks) after the log was made to tell a story: a
    plausible nightly schedule instead of the test clock, one partition late, one missing, an unpartitioned
    feed that went three days without a delivery, and an older run of a check that must not count.
    (The pool models in between take a minute and are not read: the whole job, scorecards included, runs
    in test_demo_end_to_end.)"""
    home = tmp_path_factory.mktemp("scorecards")
    warehouse = home / "warehouse.duckdb"
    with demo_lake(home, COUNTIES, DAYS, residents=1500):
        ingested = run_nightly(DAYS[0], DAYS[-1], ("raw", "reference", "stg_ingestion_log"))
        assert ingested.success
        make_a_story(warehouse)
        scored = run_nightly(DAYS[0], DAYS[-1], tuple(SCORECARDS))
    return {"home": home, "warehouse": warehouse, "ingested": ingested, "scored": scored}


def make_a_story(warehouse: Path) -> None:
    con = duckdb.connect(str(warehouse))
    try:
        # every partition delivered at 02:00 (Asia/Shanghai) the next day: 26 h after the day began
        con.execute(
            "UPDATE raw.ingestion_log SET "
            "started_at = timezone('Asia/Shanghai', CAST(partition_key AS DATE) + INTERVAL 26 HOUR), "
            "finished_at = timezone('Asia/Shanghai', CAST(partition_key AS DATE) + INTERVAL 26 HOUR) + INTERVAL 1 MINUTE "
            "WHERE partition_key IS NOT NULL"
        )
        # the snapshots and incremental fetches (and their checks) at 08:00 after the last day: the latest
        # delivery, as of which lateness is judged
        con.execute(
            "UPDATE raw.ingestion_log SET "
            "started_at = timezone('Asia/Shanghai', CAST(? AS DATE) + INTERVAL 32 HOUR), "
            "finished_at = timezone('Asia/Shanghai', CAST(? AS DATE) + INTERVAL 32 HOUR) + INTERVAL 1 MINUTE "
            "WHERE partition_key IS NULL",
            [DAYS[-1], DAYS[-1]],
        )
        con.execute(
            "UPDATE quality.expectation_results SET "
            "evaluated_at = timezone('Asia/Shanghai', CAST(? AS DATE) + INTERVAL 32 HOUR) + INTERVAL 5 MINUTE "
            "WHERE partition_key IS NULL",
            [DAYS[-1]],
        )
        # operator_b_od of the first day only at 16:00 the next day: 40 h, 10 h past its 30 h
        con.execute(
            "UPDATE raw.ingestion_log SET started_at = started_at + INTERVAL 14 HOUR, "
            "finished_at = finished_at + INTERVAL 14 HOUR WHERE feed_id = 'operator_b_od' AND partition_key = ?",
            [DAYS[0]],
        )
        # operator_c_od of the second day never came
        for table in ("raw.quarantine", "raw.ingestion_log"):
            con.execute(
                f"DELETE FROM {table} WHERE feed_id = 'operator_c_od' AND partition_key = ?", [DAYS[1]]
            )
        # the household registry was delivered three days before too (since replaced), and not since
        con.execute(
            "INSERT INTO raw.ingestion_log BY NAME SELECT * REPLACE ("
            "log_id || '-earlier' AS log_id, started_at - INTERVAL 3 DAY AS started_at, "
            "finished_at - INTERVAL 3 DAY AS finished_at, 0 AS rows_received, 0 AS rows_loaded, "
            "0 AS rows_quarantined, '{}' AS quarantined_by_reason, 'superseded' AS status) "
            "FROM raw.ingestion_log WHERE feed_id = 'household_registry'"
        )
        # an earlier run of a partitioned suite where everything failed: only the latest run counts
        con.execute(
            "INSERT INTO quality.expectation_results BY NAME SELECT * REPLACE ("
            "'an-earlier-run' AS run_id, false AS success, evaluated_at - INTERVAL 1 HOUR AS evaluated_at) "
            "FROM quality.expectation_results WHERE suite = 'raw.operator_a_presence'"
        )
    finally:
        con.close()


def sql(warehouse: Path, query: str, params=None) -> list[tuple]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(query, params or []).fetchall()
    finally:
        con.close()


def providers(catalog) -> dict[str, str]:
    return {f.id: f.provider for f in catalog.feeds}


def test_the_nightly_run_builds_and_checks_the_scorecards(lake):
    result = lake["scored"]
    assert result.success
    built = {event.asset_key.path[-1] for event in result.get_asset_materialization_events()}
    assert set(SCORECARDS) <= built
    checks = {(e.asset_key.path[-1], e.check_name): e for e in result.get_asset_check_evaluations()}
    for model in SCORECARDS:
        assert checks[(model, "gx_blocking")].passed, model
    for model in SCORECARDS:
        (rows,) = sql(lake["warehouse"], f"SELECT count(*) FROM pool.{model}")[0]
        assert rows > 0, model


def test_scorecards_are_built_after_the_raw_checks():
    """The scorecards are built by the dbt step that depends on every raw feed, which Dagster starts only
    after the raw feeds' blocking checks (so this run's raw expectations are in the results table)."""
    from assets.dbt.models import citybrain_dbt_models

    manifest = json.loads(citybrain_dbt_project.manifest_path.read_text(encoding="utf-8"))
    models = {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    step_keys = {key.path[-1] for key in citybrain_dbt_models.keys}
    upstream = {key.to_user_string() for key in citybrain_dbt_models.dependency_keys}
    assert set(SCORECARDS) <= step_keys
    assert {f"raw/{feed.id}" for feed in load_catalog().feeds} <= upstream
    for name in SCORECARDS:
        assert "scorecard" in models[name]["tags"] and models[name]["schema"] == "pool", name
        assert models[name]["contract"]["enforced"], name


def test_rows_per_provider_and_day_equal_the_ingestion_log(lake, catalog):
    warehouse = lake["warehouse"]
    expected = Counter()
    deliveries = Counter()
    failed = Counter()
    for feed, day, status, received, loaded, quarantined in sql(
        warehouse,
        f"SELECT feed_id, {DAY}, status, rows_received, rows_loaded, rows_quarantined FROM raw.ingestion_log",
    ):
        key = (providers(catalog)[feed], day)
        if status in ("loaded", "superseded"):
            deliveries[key] += 1
            expected[key + ("received",)] += received
            expected[key + ("loaded",)] += loaded
            expected[key + ("quarantined",)] += quarantined
        elif status == "failed":
            failed[key] += 1
    scorecard = sql(
        warehouse,
        "SELECT provider_code, day, deliveries, failed_deliveries, rows_received, rows_loaded, rows_quarantined "
        "FROM pool.quality_scorecard_daily",
    )
    assert {(p, d) for p, d, n, *_ in scorecard if n} == set(deliveries)
    assert {(p, d) for p, d, *_ in scorecard} >= set(deliveries) | set(failed)
    assert {d for _, d, *_ in scorecard} >= {date.fromisoformat(d) for d in DAYS}
    for provider, day, n, n_failed, received, loaded, quarantined in scorecard:
        key = (provider, day)
        assert (n, n_failed) == (deliveries[key], failed[key]), key
        assert received == expected[key + ("received",)] == loaded + quarantined, key
        assert loaded == expected[key + ("loaded",)], key
        assert quarantined == expected[key + ("quarantined",)], key
    assert sum(q for *_, q in scorecard) > 0  # the demo injects defects


def test_quarantine_by_reason_equals_raw_quarantine(lake, catalog):
    warehouse = lake["warehouse"]
    counted = Counter(
        {
            (providers(catalog)[feed], day, feed, reason): n
            for feed, day, reason, n in sql(
                warehouse,
                f"SELECT q.feed_id, {DAY.replace('partition_key', 'l.partition_key')}, q.reason, count(*) "
                "FROM raw.quarantine AS q JOIN raw.ingestion_log AS l USING (log_id) GROUP BY ALL",
            )
        }
    )
    reasons = sql(
        warehouse,
        "SELECT provider_code, day, feed_id, reason, rows_quarantined, rows_in_quarantine "
        "FROM pool.quality_scorecard_reasons",
    )
    assert {tuple(r[:4]): r[4] for r in reasons} == dict(counted)
    assert all(logged == kept for *_, logged, kept in reasons)
    by_day = Counter()
    for provider, day, _, _, n, _ in reasons:
        by_day[(provider, day)] += n
    daily = sql(warehouse, "SELECT provider_code, day, rows_quarantined FROM pool.quality_scorecard_daily")
    assert {(p, d): n for p, d, n in daily if n} == dict(by_day)


def test_expectations_equal_the_results_of_the_run(lake, catalog):
    warehouse = lake["warehouse"]
    run_id = lake["ingested"].run_id
    evaluated, passed = Counter(), Counter()
    for suite, day, success in sql(
        warehouse,
        "SELECT suite, coalesce(CAST(partition_key AS DATE), CAST(timezone('Asia/Shanghai', evaluated_at) AS DATE)), "
        "success FROM quality.expectation_results WHERE run_id = ? AND suite LIKE 'raw.%'",
        [run_id],
    ):
        key = (providers(catalog)[suite.removeprefix("raw.")], day)
        evaluated[key] += 1
        passed[key] += success
    assert evaluated, "the raw suites ran in the nightly run"
    scorecard = sql(
        warehouse,
        "SELECT provider_code, day, expectations_evaluated, expectations_passed FROM pool.quality_scorecard_daily",
    )
    assert {(p, d): e for p, d, e, _ in scorecard if e} == dict(evaluated)
    assert {(p, d): n for p, d, e, n in scorecard if e} == dict(passed)


def test_late_and_missing_partitions_are_late(lake):
    rows = sql(
        lake["warehouse"],
        "SELECT feed_id, CAST(day AS VARCHAR), expected, delivered, late, lateness_hours "
        "FROM pool.quality_scorecard_feed_daily WHERE partitioned",
    )
    feed_days = {
        (feed, day): (expected, delivered, late, hours)
        for feed, day, expected, delivered, late, hours in rows
    }
    assert feed_days[("operator_b_od", DAYS[0])] == (True, True, True, pytest.approx(10.0))
    missing_expected, missing_delivered, missing_late, missing_hours = feed_days[("operator_c_od", DAYS[1])]
    assert (missing_expected, missing_delivered, missing_late) == (True, False, True)
    assert missing_hours == pytest.approx(2 + 1 / 60)  # due 06:00, not there as of the latest delivery 08:01
    on_time = {
        k: v
        for k, v in feed_days.items()
        if k not in {("operator_b_od", DAYS[0]), ("operator_c_od", DAYS[1])}
    }
    assert on_time and all(v == (True, True, False, 0.0) for v in on_time.values()), on_time
    daily = {
        (provider, str(day)): (expected, delivered, late, round(hours, 3))
        for provider, day, expected, delivered, late, hours in sql(
            lake["warehouse"],
            "SELECT provider_code, day, feeds_expected, feeds_delivered, feeds_late, max_lateness_hours "
            "FROM pool.quality_scorecard_daily WHERE provider_code IN ('CUCC', 'CTCC')",
        )
    }
    assert daily[("CUCC", DAYS[0])] == (2, 2, 1, 10.0)  # operator B presence on time, OD 10 h late
    assert daily[("CUCC", DAYS[1])][2] == 0
    assert daily[("CTCC", DAYS[1])][:3] == (2, 1, 1)  # operator C presence delivered, OD missing


def test_an_unpartitioned_feed_is_late_on_the_days_it_went_stale(lake):
    rows = sql(
        lake["warehouse"],
        "SELECT day, deliveries, expected, late, lateness_hours FROM pool.quality_scorecard_feed_daily "
        "WHERE feed_id = 'household_registry' ORDER BY day",
    )
    first, *stale, last = rows
    assert len(stale) == 2 and [d - first[0] for d, *_ in rows] == [timedelta(days=i) for i in range(4)]
    assert first[1:4] == (1, True, False)
    assert all(deliveries == 0 and late and hours > 0 for _, deliveries, _, late, hours in stale)
    assert last[1:4] == (1, True, True)
    assert last[4] == pytest.approx(72 - 30)  # three days after the previous delivery, 30 h allowed


def test_only_the_latest_run_of_a_check_counts(lake):
    warehouse = lake["warehouse"]
    (earlier,) = sql(
        warehouse, "SELECT count(*) FROM quality.expectation_results WHERE run_id = 'an-earlier-run'"
    )[0]
    assert earlier > 0
    in_run = sql(
        warehouse,
        "SELECT CAST(partition_key AS DATE), count(*), count(*) FILTER (WHERE success) "
        "FROM quality.expectation_results WHERE suite = 'raw.operator_a_presence' AND run_id = ? GROUP BY 1 ORDER BY 1",
        [lake["ingested"].run_id],
    )
    assert [str(day) for day, *_ in in_run] == DAYS
    assert in_run == sql(
        warehouse,
        "SELECT day, expectations_evaluated, expectations_passed FROM pool.quality_scorecard_feed_daily "
        "WHERE feed_id = 'operator_a_presence' AND expectations_evaluated > 0 ORDER BY day",
    )


def test_trend_covers_every_provider(lake, catalog):
    trend = {
        row[0]: row[1:]
        for row in sql(
            lake["warehouse"],
            "SELECT provider_code, window_end, days_reported, rows_received_30d, late_days_30d, direction "
            "FROM pool.quality_scorecard_trend",
        )
    }
    assert set(trend) == {f.provider for f in catalog.feeds}
    (latest,) = sql(lake["warehouse"], "SELECT max(day) FROM pool.quality_scorecard_daily")[0]
    (received,) = sql(lake["warehouse"], "SELECT sum(rows_received) FROM pool.quality_scorecard_daily")[0]
    assert {window_end for window_end, *_ in trend.values()} == {latest}
    assert sum(r for _, _, r, _, _ in trend.values()) == received
    assert trend["CUCC"][3] == 1 and trend["CTCC"][3] == 1
    # both weeks are needed for a direction; the demo lake has two days
    assert all(direction is None for *_, direction in trend.values())
