"""Bad scale-out configuration stops `citybrain run` before anything runs (docs/SCALE.md): an unreachable
Spark Thrift Server, no Java, an unreachable PostgreSQL instance, an unknown target — each named with the
fix, and nothing ingested, built or published."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from citybrain.scale.cluster import free_port

CITYBRAIN = str(Path(sys.executable).with_name("citybrain"))
INSTANCE = Path(__file__).resolve().parent.parent / "orchestration" / "instance" / "dagster.postgres.yaml"


def run(home: Path, **env: str) -> subprocess.CompletedProcess:
    environment = {
        **os.environ,
        "CITYBRAIN_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster_home"),
        **env,
    }
    for name in ("CITYBRAIN_WAREHOUSE", "CITYBRAIN_LANDING", "CITYBRAIN_DBT_TARGET"):
        if name not in env:
            environment.pop(name, None)
    return subprocess.run(
        [CITYBRAIN, "run", "--date", "2026-11-20"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_nothing_ran(home: Path) -> None:
    assert not (home / "warehouse.duckdb").exists()
    assert not (home / "pool").exists()
    assert not (home / "lake").exists()


@pytest.fixture
def home(tmp_path):
    (tmp_path / "landing").mkdir()
    return tmp_path


def test_an_unreachable_thrift_server_stops_the_run_naming_it(home):
    port = free_port()
    result = run(home, CITYBRAIN_DBT_TARGET="spark_thrift", CITYBRAIN_SPARK_THRIFT_PORT=str(port))
    assert result.returncode == 1
    assert f"127.0.0.1:{port}" in result.stderr and "CITYBRAIN_SPARK_THRIFT_PORT" in result.stderr
    assert_nothing_ran(home)


def test_a_spark_target_without_java_says_how_to_install_it(home, tmp_path_factory):
    empty = tmp_path_factory.mktemp("no_java")
    result = run(
        home, CITYBRAIN_DBT_TARGET="spark", JAVA_HOME=str(empty), PATH=str(Path(sys.executable).parent)
    )
    assert result.returncode == 1
    assert "Java" in result.stderr and "openjdk-17" in result.stderr
    assert_nothing_ran(home)


def test_an_unreachable_postgres_instance_stops_the_run_naming_it(home):
    (home / "dagster_home").mkdir()
    shutil.copyfile(INSTANCE, home / "dagster_home" / "dagster.yaml")
    port = free_port()
    result = run(
        home,
        DAGSTER_PG_HOST="127.0.0.1",
        DAGSTER_PG_PORT=str(port),
        DAGSTER_PG_USER="postgres",
        DAGSTER_PG_PASSWORD="",
        DAGSTER_PG_DB="citybrain_nowhere",
    )
    assert result.returncode == 1
    assert f"127.0.0.1:{port}" in result.stderr and "DAGSTER_PG_HOST" in result.stderr
    assert_nothing_ran(home)


def test_an_unknown_target_is_refused(home):
    result = run(home, CITYBRAIN_DBT_TARGET="snowflake")
    assert result.returncode == 1
    assert "unknown dbt target 'snowflake'" in result.stderr
    assert_nothing_ran(home)
