"""Schedules, sensors, alerts and freshness checks, evaluated directly (no daemon, no demo city)."""

import json
import logging
import os
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
from dagster import (
    AssetCheckResult,
    AssetKey,
    AssetMaterialization,
    AssetSelection,
    AssetSpec,
    DagsterInstance,
    Definitions,
    Failure,
    asset,
    asset_check,
    build_run_status_sensor_context,
    build_schedule_context,
    build_sensor_context,
    define_asset_job,
)

import assets.freshness as freshness
import orchestration.alerts as alerts
import orchestration.sensors as sensors_module
from assets.freshness import FRESHNESS_CHECK, build_freshness_checks
from assets.resources import LandingZoneResource
from citybrain.catalog import FileDelivery
from citybrain.ingest.landing import delivery_pattern, sha256_of
from orchestration.alerts import ALERT_WEBHOOK_ENV
from orchestration.schedules import CADENCE_CRONS, NIGHTLY_SCHEDULE, build_schedules
from orchestration.sensors import (
    build_landing_sensor,
    file_partition,
    load_cursor,
    run_failure_alert,
)
from tests.test_ingest_files import REGISTRY_ROW, egov_csv, registry_csv, write

SHANGHAI = ZoneInfo("Asia/Shanghai")
AN_HOUR_AGO = time.time() - 3600


# --- schedules ----------------------------------------------------------------------------------------


def _schedules(catalog):
    return {s.name: s for s in build_schedules(catalog)}


@pytest.fixture(scope="module")
def repository():
    """The real code location: run requests are resolved and validated against its jobs."""
    from orchestration.definitions import defs

    return defs.get_repository_def()


@pytest.mark.parametrize(
    "tick, partition",
    [
        (datetime(2026, 11, 21, 2, 0, tzinfo=SHANGHAI), "2026-11-20"),
        # 18:00 UTC is already 02:00 the next day in Shanghai: the UTC date would be a day behind.
        (datetime(2026, 11, 20, 18, 0, tzinfo=ZoneInfo("UTC")), "2026-11-20"),
        (datetime(2026, 3, 1, 2, 0, tzinfo=SHANGHAI), "2026-02-28"),
    ],
)
def test_nightly_schedule_runs_city_nightly_for_the_previous_shanghai_day(
    catalog, repository, tick, partition
):
    nightly = _schedules(catalog)[NIGHTLY_SCHEDULE]
    assert nightly.job_name == "city_nightly"
    assert nightly.cron_schedule == "0 2 * * *" and nightly.execution_timezone == "Asia/Shanghai"
    assert nightly.default_status.value == "STOPPED"
    with DagsterInstance.ephemeral() as instance:
        context = build_schedule_context(
            instance=instance, scheduled_execution_time=tick, repository_def=repository
        )
        data = nightly.evaluate_tick(context)
    (request,) = data.run_requests
    assert request.partition_key == partition
    assert request.asset_selection is None  # everything: ingest, dbt, checks, publication


def test_every_non_daily_feed_gets_a_schedule_on_its_cadence(catalog, repository, tmp_path):
    schedules = _schedules(catalog)
    expected = {f"{f.id}_{f.cadence}": f for f in catalog.feeds if f.cadence != "daily"}
    assert set(schedules) == {NIGHTLY_SCHEDULE, *expected}
    assert {"medical_facilities_monthly", "operator_c_cells_monthly", "operator_market_share_monthly"} <= set(
        expected
    )
    assert schedules["medical_facilities_monthly"].cron_schedule == "0 2 1 * *"
    assert schedules["schools_termly"].cron_schedule == "0 2 1 3,9 *"
    tick = datetime(2026, 9, 1, 2, 0, tzinfo=SHANGHAI)
    with DagsterInstance.local_temp(str(tmp_path)) as instance:  # schedules need a persistent one
        for name, feed in expected.items():
            schedule = schedules[name]
            assert schedule.job_name == "raw_ingestion"
            assert schedule.cron_schedule == CADENCE_CRONS[feed.cadence]
            assert schedule.execution_timezone == "Asia/Shanghai"
            assert schedule.default_status.value == "STOPPED"
            context = build_schedule_context(
                instance=instance, scheduled_execution_time=tick, repository_def=repository
            )
            (request,) = schedule.evaluate_tick(context).run_requests
            assert request.asset_selection == [AssetKey(["raw", feed.id])]
            assert request.partition_key == ("2026-08-31" if feed.is_partitioned else None)


def test_cadence_schedules_skip_while_the_nightly_schedule_is_active(catalog, repository, tmp_path):
    """The nightly ingests every feed: a monthly run at the same 02:00 would load the same delivery twice."""
    schedule = _schedules(catalog)["medical_facilities_monthly"]
    tick = datetime.now(SHANGHAI)
    with DagsterInstance.local_temp(str(tmp_path)) as instance:  # schedules need a persistent one
        context = build_schedule_context(
            instance=instance, scheduled_execution_time=tick, repository_def=repository
        )
        assert len(schedule.evaluate_tick(context).run_requests) == 1
        nightly = Definitions(
            assets=[_loaded_feed], jobs=[define_asset_job("city_nightly", AssetSelection.all())]
        )
        nightly.resolve_job_def("city_nightly").execute_in_process(
            instance=instance, tags={"dagster/schedule_name": NIGHTLY_SCHEDULE}
        )
        data = schedule.evaluate_tick(context)
    assert not data.run_requests
    assert "city_nightly_schedule is active" in data.skip_message


# --- landing-zone sensor ------------------------------------------------------------------------------


def _deliver(landing: Path, relative: str, data: bytes, age_seconds: float = 3600) -> Path:
    path = write(landing, relative, data)
    mtime = time.time() - age_seconds
    os.utime(path, (mtime, mtime))
    return path


class LandingSensor:
    """Evaluates the landing sensor tick after tick, carrying the cursor like the daemon does."""

    def __init__(self, catalog, repository, landing: Path, **options):
        self.sensor = build_landing_sensor(catalog, **options)
        self.repository = repository
        self.landing = landing
        self.cursor = None
        self.instance = DagsterInstance.ephemeral()

    def tick(self):
        context = build_sensor_context(
            instance=self.instance,
            cursor=self.cursor,
            repository_def=self.repository,
            resources={"landing": LandingZoneResource(path=str(self.landing))},
        )
        data = self.sensor.evaluate_tick(context)
        self.cursor = data.cursor
        return data.run_requests


def test_a_new_delivery_starts_exactly_one_run_and_a_changed_one_one_more(lake, catalog, repository):
    landing = lake / "landing"
    sensor = LandingSensor(catalog, repository, landing)
    path = _deliver(landing, "egov/applications_20261120.csv", egov_csv(catalog, ["A1", "A2"]))
    (request,) = sensor.tick()
    first = sha256_of(path)
    assert request.partition_key == "2026-11-20"
    assert request.run_key == f"egov_applications:2026-11-20:{first}"
    assert request.asset_selection == [AssetKey(["raw", "egov_applications"])]
    assert request.tags["citybrain/file"] == "egov/applications_20261120.csv"
    assert sensor.sensor.job_name == "raw_ingestion"

    assert sensor.tick() == []  # the cursor knows the file
    assert sensor.tick() == []

    os.utime(path, (AN_HOUR_AGO + 60, AN_HOUR_AGO + 60))  # touched, same bytes: hashed again, no run
    assert sensor.tick() == []

    _deliver(landing, "egov/applications_20261120.csv", egov_csv(catalog, ["A1", "A2", "A3"]), 1800)
    (changed,) = sensor.tick()
    second = sha256_of(path)
    assert second != first
    assert changed.run_key == f"egov_applications:2026-11-20:{second}"
    assert changed.partition_key == "2026-11-20"
    assert sensor.tick() == []


def test_unpartitioned_feeds_run_without_a_partition(lake, catalog, repository):
    landing = lake / "landing"
    sensor = LandingSensor(catalog, repository, landing)
    _deliver(
        landing,
        "public_security/household_registry_20261120.csv",
        registry_csv([REGISTRY_ROW.format(id="330102199001011234", n=1)], catalog),
    )
    (request,) = sensor.tick()
    assert request.partition_key is None
    assert request.run_key.startswith("household_registry::")
    assert request.asset_selection == [AssetKey(["raw", "household_registry"])]


def test_files_of_one_feed_and_partition_in_one_tick_share_one_run(lake, catalog, repository):
    """Ingestion reads every file of the partition: two concurrent runs would load the same files twice."""
    landing = lake / "landing"
    sensor = LandingSensor(catalog, repository, landing)
    for day in (20, 21):
        row = REGISTRY_ROW.format(id="330102199001011234", n=day)
        _deliver(landing, f"public_security/household_registry_202611{day}.csv", registry_csv([row], catalog))
    (request,) = sensor.tick()
    first = sha256_of(landing / "public_security/household_registry_20261120.csv")
    assert request.run_key == f"household_registry::{first}"
    assert request.tags["citybrain/file"] == (
        "public_security/household_registry_20261120.csv, public_security/household_registry_20261121.csv"
    )
    assert sensor.tick() == []


def test_files_no_feed_claims_start_nothing(lake, catalog, repository):
    landing = lake / "landing"
    sensor = LandingSensor(catalog, repository, landing)
    _deliver(landing, "egov/unknown_report.csv", b"a,b\n1,2\n")
    _deliver(landing, "somewhere/else.csv", b"a,b\n1,2\n")
    _deliver(landing, "egov/applications_2026112.csv", egov_csv(catalog, ["A1"]))  # no day in the name
    assert sensor.tick() == []
    assert sensor.tick() == []


def test_files_still_being_written_or_for_today_wait(lake, catalog, repository):
    landing = lake / "landing"
    sensor = LandingSensor(catalog, repository, landing)
    path = _deliver(landing, "egov/applications_20261120.csv", egov_csv(catalog, ["A1"]), age_seconds=0)
    today = datetime.now(SHANGHAI).date()
    _deliver(landing, f"egov/applications_{today:%Y%m%d}.csv", egov_csv(catalog, ["T1"]))
    assert sensor.tick() == []  # one too fresh to read, one for a day that is not over
    os.utime(path, (AN_HOUR_AGO, AN_HOUR_AGO))
    (request,) = sensor.tick()
    assert request.partition_key == "2026-11-20"


def test_the_cursor_is_compact_json_and_forgets_deleted_files(lake, catalog, repository):
    landing = lake / "landing"
    sensor = LandingSensor(catalog, repository, landing)
    paths = [
        _deliver(landing, f"egov/applications_202611{day:02d}.csv", egov_csv(catalog, [f"A{day}"]))
        for day in range(1, 21)
    ]
    assert len(sensor.tick()) == 20
    per_file = len("egov/applications_20261101.csv") + 60  # path, size, mtime (ns), 16 hex digits
    assert len(sensor.cursor) < 20 * per_file
    assert len(load_cursor(sensor.cursor)) == 20
    paths[0].unlink()
    assert sensor.tick() == []
    assert len(load_cursor(sensor.cursor)) == 19
    eight_days_ago = time.time() - 8 * 86400
    os.utime(paths[1], (eight_days_ago, eight_days_ago))  # beyond the lookback: no longer watched
    assert sensor.tick() == []
    assert len(load_cursor(sensor.cursor)) == 18


def test_files_older_than_the_lookback_are_not_replayed(lake, catalog, repository):
    landing = lake / "landing"
    sensor = LandingSensor(catalog, repository, landing)
    _deliver(landing, "egov/applications_20261101.csv", egov_csv(catalog, ["A1"]), age_seconds=8 * 86400)
    assert sensor.tick() == []
    assert load_cursor(sensor.cursor) == {}


def test_at_most_max_runs_per_tick_the_rest_next_tick(lake, catalog, repository):
    landing = lake / "landing"
    sensor = LandingSensor(catalog, repository, landing, max_runs_per_tick=3)
    for day in range(1, 6):
        _deliver(landing, f"egov/applications_202611{day:02d}.csv", egov_csv(catalog, [f"A{day}"]))
    assert len(sensor.tick()) == 3
    assert len(sensor.tick()) == 2
    assert sensor.tick() == []


def test_every_partitioned_file_feed_path_gives_back_its_day(catalog):
    feeds = [f for f in catalog.feeds if isinstance(f.delivery, FileDelivery) and f.is_partitioned]
    assert feeds
    for feed in feeds:
        relative = delivery_pattern(feed, "2026-11-05").replace("*", "x")
        assert file_partition(feed, relative) == "2026-11-05", feed.id
        assert file_partition(feed, relative.replace("2026", "20x6")) is None


# --- run-failure alerts -------------------------------------------------------------------------------


class Webhook:
    """A loopback HTTP server recording JSON POSTs; answers with the given statuses in turn."""

    def __init__(self, statuses=(200,)):
        self.bodies: list[dict] = []
        self.statuses = list(statuses)
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                length = int(self.headers["Content-Length"])
                hook.bodies.append(json.loads(self.rfile.read(length)))
                status = hook.statuses.pop(0) if len(hook.statuses) > 1 else hook.statuses[0]
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@asset(key=["raw", "egov_applications"])
def _failing_feed():
    raise Failure(description="egov_applications: no delivery for partition 2026-11-20")


@asset(key=["raw", "schools"])
def _loaded_feed():
    return 1


@asset_check(asset=_loaded_feed, name="gx_blocking", blocking=True)
def _blocking_check():
    return AssetCheckResult(
        passed=False, description="1 of 9 expectations of schools failed: not_null(school_id)"
    )


def _failed_run(instance: DagsterInstance):
    defs = Definitions(
        assets=[_failing_feed, _loaded_feed],
        asset_checks=[_blocking_check],
        jobs=[define_asset_job("city_nightly", AssetSelection.all())],
    )
    result = defs.resolve_job_def("city_nightly").execute_in_process(
        instance=instance, raise_on_error=False, tags={"dagster/partition": "2026-11-20"}
    )
    assert not result.success
    return build_run_status_sensor_context(
        sensor_name="run_failure_alert",
        dagster_event=result.get_run_failure_event(),
        dagster_instance=instance,
        dagster_run=result.dagster_run,
    )


def test_a_failed_run_is_posted_to_the_webhook(monkeypatch, caplog):
    with Webhook() as hook, DagsterInstance.ephemeral() as instance:
        monkeypatch.setenv(ALERT_WEBHOOK_ENV, hook.url)
        context = _failed_run(instance)
        run_failure_alert(context)
    (body,) = hook.bodies
    run_id = context.dagster_run.run_id
    assert body["alert"] == "run_failure"
    assert body["job"] == "city_nightly" and body["run_id"] == run_id
    assert body["partition"] == "2026-11-20"
    assert body["run_path"] == f"/runs/{run_id}"
    steps = {s["step"]: s["error"] for s in body["failed_steps"]}
    assert steps["raw__egov_applications"] == "egov_applications: no delivery for partition 2026-11-20"
    assert body["error"] == "egov_applications: no delivery for partition 2026-11-20"
    assert body["failed_blocking_checks"] == [
        {
            "asset": "raw/schools",
            "check": "gx_blocking",
            "partition": None,
            "description": "1 of 9 expectations of schools failed: not_null(school_id)",
        }
    ]
    assert "failed" in body["message"]
    assert any("RUN FAILED" in r.message and run_id in r.message for r in caplog.records)


def test_without_a_webhook_url_the_alert_is_only_logged(monkeypatch, caplog):
    monkeypatch.delenv(ALERT_WEBHOOK_ENV, raising=False)

    def no_post(*args, **kwargs):
        raise AssertionError("no webhook is configured: nothing may be POSTed")

    monkeypatch.setattr(requests, "post", no_post)
    caplog.set_level(logging.INFO, logger="citybrain.alerts")
    with DagsterInstance.ephemeral() as instance:
        context = _failed_run(instance)
        run_failure_alert(context)
    messages = [r.message for r in caplog.records if r.name == "citybrain.alerts"]
    assert any("RUN FAILED: job city_nightly" in m and "raw__egov_applications" in m for m in messages)
    assert any(f"{ALERT_WEBHOOK_ENV} is not set" in m for m in messages)


def test_a_failing_webhook_is_retried_once_and_never_breaks_the_sensor(monkeypatch, caplog):
    monkeypatch.setattr(alerts, "RETRY_DELAY_SECONDS", 0)
    with Webhook(statuses=(503,)) as hook, DagsterInstance.ephemeral() as instance:
        monkeypatch.setenv(ALERT_WEBHOOK_ENV, hook.url)
        context = _failed_run(instance)
        run_failure_alert(context)  # does not raise
    assert len(hook.bodies) == 2  # one attempt and one retry
    assert any("webhook failed after 2 attempt(s) (HTTP 503" in r.message for r in caplog.records)

    # nothing listening at all
    with Webhook() as closed:
        url = closed.url
    monkeypatch.setenv(ALERT_WEBHOOK_ENV, url)
    with DagsterInstance.ephemeral() as instance:
        run_failure_alert(_failed_run(instance))
    assert any("ConnectionError" in r.message for r in caplog.records)
    assert not any(url in r.message for r in caplog.records)  # the URL (may hold a token) is not logged


def test_an_alert_goes_out_even_when_the_runs_details_cannot_be_read(monkeypatch):
    def broken(*args):
        raise RuntimeError("event log unavailable")

    monkeypatch.setattr(sensors_module, "build_failure_alert", broken)
    with Webhook() as hook, DagsterInstance.ephemeral() as instance:
        monkeypatch.setenv(ALERT_WEBHOOK_ENV, hook.url)
        context = _failed_run(instance)
        run_failure_alert(context)
    (body,) = hook.bodies
    assert body["run_id"] == context.dagster_run.run_id and body["job"] == "city_nightly"
    assert "event log unavailable" in body["error"]


def test_the_failure_sensor_reports_runs_executed_in_process_once(monkeypatch, repository):
    """Evaluated tick after tick as the daemon does: `citybrain run` runs (no code-location origin)
    are reported too, each failed run exactly once."""
    with Webhook() as hook, DagsterInstance.ephemeral() as instance:
        monkeypatch.setenv(ALERT_WEBHOOK_ENV, hook.url)
        first = run_failure_alert.evaluate_tick(
            build_sensor_context(instance=instance, repository_def=repository)
        )
        context = _failed_run(instance)
        cursor = first.cursor
        for _ in range(2):
            cursor = run_failure_alert.evaluate_tick(
                build_sensor_context(instance=instance, repository_def=repository, cursor=cursor)
            ).cursor
    (body,) = hook.bodies
    assert body["run_id"] == context.dagster_run.run_id


# --- freshness ----------------------------------------------------------------------------------------


def test_every_feed_has_a_warn_freshness_check_with_the_catalogs_max_age(catalog):
    (checks,) = build_freshness_checks(catalog)
    specs = {spec.asset_key: spec for spec in checks.check_specs}
    assert set(specs) == {AssetKey(["raw", f.id]) for f in catalog.feeds}
    for feed in catalog.feeds:
        spec = specs[AssetKey(["raw", feed.id])]
        assert spec.name == FRESHNESS_CHECK and not spec.blocking
        assert spec.metadata["max_age_hours"] == feed.max_age_hours
        assert spec.metadata["dagster/freshness_params"].value["lower_bound_delta_seconds"] == (
            feed.max_age_hours * 3600
        )
    assert catalog.feed("egov_applications").max_age_hours == 30
    assert catalog.feed("medical_facilities").max_age_hours == 744 * 1.25


def _evaluate_freshness(catalog, instance, now=None, monkeypatch=None):
    checks = build_freshness_checks(catalog)
    if now is not None:
        monkeypatch.setattr(freshness, "_now", lambda: now)
    defs = Definitions(
        assets=[AssetSpec(AssetKey(["raw", f.id])) for f in catalog.feeds],
        asset_checks=checks,
        jobs=[define_asset_job("freshness", AssetSelection.checks(*checks))],
    )
    result = defs.resolve_job_def("freshness").execute_in_process(instance=instance)
    assert result.success  # an overdue feed is a warning: the run still succeeds
    return {e.asset_key.path[1]: e for e in result.get_asset_check_evaluations()}


def test_freshness_counts_deliveries_not_materialisations(catalog, monkeypatch):
    egov, schools = AssetKey(["raw", "egov_applications"]), AssetKey(["raw", "schools"])
    with DagsterInstance.ephemeral() as instance:
        instance.report_runless_asset_event(AssetMaterialization(egov, metadata={"rows_received": 12}))
        instance.report_runless_asset_event(AssetMaterialization(schools, metadata={"rows_received": 0}))
        evaluations = _evaluate_freshness(catalog, instance)
        assert evaluations["egov_applications"].passed
        assert evaluations["egov_applications"].severity.value == "WARN"
        assert "dagster/fresh_until_timestamp" in evaluations["egov_applications"].metadata
        # a re-ingestion that received nothing is not new data: never delivered
        assert not evaluations["schools"].passed
        assert not evaluations["hotline_tickets"].passed

        # 31 h later the daily feed (30 h allowed) is overdue, as a warning
        later = evaluations["egov_applications"].metadata["dagster/last_updated_timestamp"].value + 31 * 3600
        overdue = _evaluate_freshness(catalog, instance, later, monkeypatch)["egov_applications"]
        assert not overdue.passed and overdue.severity.value == "WARN"
        assert overdue.metadata["overdue_hours"].value == pytest.approx(1.0, abs=0.1)
        assert "Overdue" in overdue.description


# --- the code location --------------------------------------------------------------------------------


def test_definitions_carry_the_schedules_sensors_and_freshness_checks(catalog, repository):
    assert {s.name for s in repository.schedule_defs} == set(_schedules(catalog))
    sensors = {s.name: s for s in repository.sensor_defs}
    assert set(sensors) == {
        "landing_zone_sensor",
        "run_failure_alert",
        "stale_tables_alert",
        "overdue_applications_alert",
        "freshness_checks_sensor",
    }
    assert sensors["landing_zone_sensor"].default_status.value == "STOPPED"
    assert sensors["run_failure_alert"].default_status.value == "RUNNING"
    assert sensors["overdue_applications_alert"].default_status.value == "RUNNING"
    check_keys = repository.asset_graph.asset_check_keys
    with DagsterInstance.ephemeral() as instance:  # never evaluated: the freshness sensor asks for all
        context = build_sensor_context(instance=instance, repository_def=repository)
        (request,) = sensors["freshness_checks_sensor"].evaluate_tick(context).run_requests
    assert {k.asset_key.path[1] for k in request.asset_check_keys} == {f.id for f in catalog.feeds}
    assert {k.name for k in request.asset_check_keys} == {FRESHNESS_CHECK}
    for feed in catalog.feeds:
        assert any(
            k.asset_key == AssetKey(["raw", feed.id]) and k.name == FRESHNESS_CHECK for k in check_keys
        )
        assert any(k.asset_key == AssetKey(["raw", feed.id]) and k.name == "gx_blocking" for k in check_keys)
