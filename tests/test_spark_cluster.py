"""The local Spark standalone cluster with the City Brain Thrift Server, and the preflight checks.

The cluster test is slow (a Master, a Worker and a Python Thrift driver: about a minute on two cores) and
runs with RUN_SLOW=1 (``make test-all``); the preflight tests are fast and fail within seconds.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

import pytest

from citybrain import processes
from citybrain.scale import cluster
from citybrain.scale.preflight import PreflightError, require_java, require_postgres, require_thrift


@pytest.fixture
def spark_home_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A lake of its own (CITYBRAIN_HOME) for Spark's state, bound to 127.0.0.1."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("CITYBRAIN_HOME", str(home))
    monkeypatch.setenv("SPARK_LOCAL_IP", "127.0.0.1")
    for var in ("CITYBRAIN_SPARK_DIR", "CITYBRAIN_LAKE", "CITYBRAIN_SPARK_MASTER", "PYSPARK_SUBMIT_ARGS"):
        monkeypatch.delenv(var, raising=False)
    return home


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for probe in sockets:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in sockets]
    finally:
        for probe in sockets:
            probe.close()


# --- preflight (fast) -------------------------------------------------------------------------------


def test_missing_java_java_home_empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "jdk"
    empty.mkdir()
    monkeypatch.setenv("JAVA_HOME", str(empty))
    with pytest.raises(PreflightError, match="no Java found"):
        require_java()


def test_missing_java_not_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spark_home_dir: Path
) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    with pytest.raises(PreflightError, match="openjdk-17"):
        require_java()
    with pytest.raises(RuntimeError, match="no Java found"):  # the cluster refuses before starting anything
        cluster.start(master_port=_free_ports(1)[0])
    assert not cluster.state_path().exists()


def test_thrift_on_a_closed_port_fails_fast_naming_it() -> None:
    (port,) = _free_ports(1)
    began = time.monotonic()
    with pytest.raises(PreflightError) as failure:
        require_thrift("127.0.0.1", port, timeout=2)
    assert time.monotonic() - began < 5
    message = str(failure.value)
    assert f"127.0.0.1:{port}" in message
    assert "python -m citybrain.scale.cluster start" in message
    assert "CITYBRAIN_SPARK_THRIFT_HOST" in message and "CITYBRAIN_SPARK_THRIFT_PORT" in message


def test_thrift_defaults_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    (port,) = _free_ports(1)
    monkeypatch.setenv("CITYBRAIN_SPARK_THRIFT_HOST", "127.0.0.1")
    monkeypatch.setenv("CITYBRAIN_SPARK_THRIFT_PORT", str(port))
    with pytest.raises(PreflightError, match=f"127.0.0.1:{port}"):
        require_thrift(timeout=2)


def test_postgres_on_a_closed_port_fails_naming_it() -> None:
    (port,) = _free_ports(1)
    began = time.monotonic()
    with pytest.raises(PreflightError) as failure:
        require_postgres(f"postgresql+psycopg2://dagster:secret@127.0.0.1:{port}/citybrain", timeout=2)
    assert time.monotonic() - began < 10
    message = str(failure.value)
    assert f"127.0.0.1:{port}/citybrain" in message
    assert "DAGSTER_PG_HOST" in message and "DAGSTER_PG_DB" in message
    assert "secret" not in message


def test_stop_without_state_is_a_no_op(spark_home_dir: Path) -> None:
    assert not cluster.state_path().exists()
    assert cluster.stop() == []
    assert cluster.stop() == []
    assert not cluster.state_path().exists()
    assert cluster.status()["running"] is False


def test_stop_with_a_stale_state_file(spark_home_dir: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    cluster.state_path().parent.mkdir(parents=True)
    entry = {"name": "master", "pid": gone.pid, "pgid": gone.pid, "start_time": "1", "log": "x"}
    cluster.state_path().write_text(json.dumps({"master": entry, "workers": [], "thrift": None}))
    assert cluster.stop(grace=1) == []
    assert not cluster.state_path().exists()


def test_start_refuses_a_port_in_use(spark_home_dir: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        webui, thrift = _free_ports(2)
        with pytest.raises(cluster.ClusterError, match=f"127.0.0.1:{port} .*already in use"):
            cluster.start(master_port=port, master_webui_port=webui, thrift_port=thrift)
    assert not cluster.state_path().exists()


# --- the cluster (slow) -----------------------------------------------------------------------------


def _small_lake(home: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    partition = home / "lake" / "raw" / "feed=residents" / "partition=2024-01-01"
    partition.mkdir(parents=True)
    table = pa.table(
        {
            "ric": ["11010519491231002x", "110105194912310021", None],
            "name": ["欧阳娜娜", "张三", "李四"],
            "_partition": ["2024-01-01"] * 3,
        }
    )
    pq.write_table(table, partition / "data-0.parquet")


def _query(port: int, sql: str) -> list[tuple]:
    from pyhive import hive

    connection = hive.connect(host="127.0.0.1", port=port, username="citybrain")
    try:
        cursor = connection.cursor()
        cursor.execute(sql)
        return cursor.fetchall()
    finally:
        connection.close()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_cluster_start_query_stop(spark_home_dir: Path) -> None:
    _small_lake(spark_home_dir)
    master_port, webui_port, worker_webui_port, thrift_port = _free_ports(4)
    ports = [master_port, webui_port, worker_webui_port, thrift_port]
    timings = {}
    began = time.monotonic()
    with cluster.running_cluster(
        workers=1,
        worker_cores=1,
        worker_memory="1g",
        master_port=master_port,
        master_webui_port=webui_port,
        worker_webui_ports=[worker_webui_port],
        thrift_port=thrift_port,
    ) as state:
        timings["start"] = time.monotonic() - began
        assert state.thrift_port == thrift_port and state.master_port == master_port
        recorded = json.loads(cluster.state_path().read_text())
        assert recorded["master_url"] == f"spark://127.0.0.1:{master_port}"
        assert recorded["thrift"]["port"] == thrift_port
        for entry in cluster._entries(recorded):
            assert cluster.pid_alive(entry["pid"]), entry["name"]
            assert Path(entry["log"]).parent == cluster.logs_dir()
        assert cluster.alive_workers(webui_port) == 1

        began = time.monotonic()
        assert _query(thrift_port, "select cb_ric_normalize('11010519491231002x')") == [
            ("11010519491231002X",)
        ]
        assert _query(thrift_port, "select cb_mask_name('欧阳娜娜')") == [("欧阳**",)]
        # A lake view, read through a second connection: the one shared session has the functions.
        rows = _query(
            thrift_port, "select cb_ric_normalize(ric), cb_mask_name(name) from raw.residents order by name"
        )
        assert ("11010519491231002X", "欧阳**") in rows and len(rows) == 3
        # A Python UDF over enough rows and partitions to run as tasks on the worker's executor.
        rows = _query(
            thrift_port,
            "select count(*), count(cb_ric_normalize(x)), min(cb_ric_normalize(x)) from "
            "(select /*+ REPARTITION(8) */ concat('11010519491231002', case when id % 2 = 0 then 'x' else 'X' end) x "
            "from range(0, 4000, 1, 8)) t",
        )
        assert rows == [(4000, 4000, "11010519491231002X")]
        timings["queries"] = time.monotonic() - began
        executor_logs = list((cluster.spark_dir() / "work").glob("app-*/*/stderr"))
        assert executor_logs, "no executor ran on the worker"
        assert any("Python" in log.read_text(errors="replace") for log in executor_logs)

        # Every process of the cluster: leaders, their JVMs, the executor and its Python workers.
        everything = cluster._tree([entry["pgid"] for entry in cluster._entries(state)])
        assert len(everything) >= 5
        assert cluster.status()["running"] is True
        began = time.monotonic()
    timings["stop"] = time.monotonic() - began
    print({key: round(value, 1) for key, value in timings.items()})

    assert not cluster.state_path().exists()
    assert cluster.stop() == []  # twice is fine
    alive = [
        pid for pid in everything if cluster.pid_alive(pid) and processes.start_time(pid) == everything[pid]
    ]
    assert alive == []
    assert all(cluster.port_free(port) for port in ports)
    assert (cluster.logs_dir() / "cluster.last.json").exists()
    assert "ready on 127.0.0.1" in (cluster.logs_dir() / "thrift-server.log").read_text()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_running_cluster_stops_on_exception(spark_home_dir: Path) -> None:
    master_port, webui_port, worker_webui_port = _free_ports(3)
    pids: dict[int, str | None] = {}
    options = {
        "master_port": master_port,
        "master_webui_port": webui_port,
        "worker_webui_ports": [worker_webui_port],
        "thrift": False,
    }
    with pytest.raises(ZeroDivisionError), cluster.running_cluster(**options) as state:
        pids.update(cluster._tree([entry["pgid"] for entry in cluster._entries(state)]))
        assert cluster.alive_workers(webui_port) == 1
        raise ZeroDivisionError("a failing step inside the cluster's lifetime")
    assert pids
    assert not cluster.state_path().exists()
    assert not [pid for pid in pids if cluster.pid_alive(pid) and processes.start_time(pid) == pids[pid]]
