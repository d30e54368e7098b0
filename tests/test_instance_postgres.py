"""The production instance variant (orchestration/instance/dagster.postgres.yaml) on a real PostgreSQL.

A throwaway database on the local server (127.0.0.1:5432, trust auth, user postgres) becomes the run,
event-log and schedule storage of a fresh DAGSTER_HOME; a small job of the project (ingestion of one
feed with its checks) really runs against it, and the run and its materialisation are read back with
plain SQL from PostgreSQL, not through Dagster. Skipped only when the server is unreachable.
"""

import shutil

import pytest
from dagster import AssetKey, DagsterInstance, DagsterRunStatus

from citybrain.settings import REPO_ROOT
from tests.services import PG, pg_connect, throwaway_pg_database
from tests.test_ingest_files import REGISTRY_ROW, registry_csv, write

pytestmark = pytest.mark.server

CONFIG = REPO_ROOT / "orchestration" / "instance" / "dagster.postgres.yaml"
FEED = AssetKey(["raw", "household_registry"])


@pytest.fixture
def pg_database():
    with throwaway_pg_database("citybrain_dagster") as name:
        yield name


@pytest.fixture
def pg_instance(lake, pg_database, monkeypatch):
    """DAGSTER_HOME with the production config, pointed at the throwaway database by DAGSTER_PG_*."""
    home = lake / "dagster_home"
    shutil.copyfile(CONFIG, home / "dagster.yaml")
    for var, value in {
        "DAGSTER_PG_HOST": PG["host"],
        "DAGSTER_PG_PORT": str(PG["port"]),
        "DAGSTER_PG_USER": PG["user"],
        "DAGSTER_PG_PASSWORD": "",
        "DAGSTER_PG_DB": pg_database,
    }.items():
        monkeypatch.setenv(var, value)
    with DagsterInstance.get() as instance:
        yield instance


def test_postgres_instance_is_queued_one_run_at_a_time_per_lake(pg_instance):
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

    assert isinstance(pg_instance.run_storage, PostgresRunStorage)
    assert isinstance(pg_instance.event_log_storage, PostgresEventLogStorage)
    assert isinstance(pg_instance.schedule_storage, PostgresScheduleStorage)
    assert isinstance(pg_instance.run_coordinator, QueuedRunCoordinator)
    queue = pg_instance.get_concurrency_config().run_queue_config
    # One run at a time per lake (runs carry citybrain/lake, orchestration/jobs.py); lakes sharing the
    # instance run side by side (tests/test_lake_concurrency.py).
    assert {"key": "citybrain/lake", "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in (
        queue.tag_concurrency_limits
    )
    assert queue.max_concurrent_runs > 1


def test_a_job_of_the_project_runs_against_postgres_storage(lake, catalog, pg_instance, pg_database):
    from orchestration.definitions import defs

    rows = [REGISTRY_ROW.format(id="330102199001011234", n=1), REGISTRY_ROW.format(id="", n=2)]
    write(lake / "landing", "public_security/household_registry_20261120.csv", registry_csv(rows, catalog))

    result = defs.resolve_job_def("raw_ingestion").execute_in_process(
        instance=pg_instance, asset_selection=[FEED], raise_on_error=False
    )
    assert result.success

    # Read back from PostgreSQL directly: the run, its status and the materialisation with our counts.
    con = pg_connect(pg_database)
    try:
        with con.cursor() as cur:
            cur.execute("SELECT pipeline_name, status FROM runs WHERE run_id = %s", [result.run_id])
            assert cur.fetchall() == [("raw_ingestion", "SUCCESS")]
            cur.execute(
                "SELECT asset_key, event FROM event_logs WHERE run_id = %s AND dagster_event_type = %s",
                [result.run_id, "ASSET_MATERIALIZATION"],
            )
            materialisations = cur.fetchall()
            cur.execute("SELECT count(*) FROM event_logs WHERE run_id = %s", [result.run_id])
            (events,) = cur.fetchone()
            cur.execute("SELECT asset_key FROM asset_keys")
            asset_keys = {key for (key,) in cur.fetchall()}
    finally:
        con.close()
    assert [key for key, _ in materialisations] == [FEED.to_string()]
    assert '"rows_loaded"' in materialisations[0][1] and '"rows_quarantined"' in materialisations[0][1]
    assert FEED.to_string() in asset_keys
    assert events > 10  # run start/success, step events, check evaluations: the whole event log

    # And Dagster reads the same back through the instance (what the UI and `citybrain status` use).
    assert pg_instance.get_run_by_id(result.run_id).status == DagsterRunStatus.SUCCESS
    latest = pg_instance.get_latest_materialization_event(FEED).asset_materialization
    assert latest.metadata["rows_loaded"].value == 1
    assert latest.metadata["rows_quarantined"].value == 1
