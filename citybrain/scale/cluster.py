"""A local Spark standalone cluster for the lake: a Master, Workers and the City Brain Thrift Server.

Everything comes from the pyspark wheel (``bin/spark-class``, the standalone Master/Worker classes, the
Thrift Server jar) and the system's Java 17; everything binds to 127.0.0.1. Each process runs in its own
process group; its pid, ports and log file are recorded in ``$CITYBRAIN_HOME/spark/cluster.json`` and
its output (Spark's log4j chatter included) goes to ``$CITYBRAIN_HOME/spark/logs/``. :func:`stop` kills
the recorded process groups (SIGTERM, then SIGKILL after a grace period) and may be called any number of
times.

    python -m citybrain.scale.cluster start [--workers N] [--worker-cores C] [--worker-memory 1g]
                                            [--master-port P] [--thrift-port P]
    python -m citybrain.scale.cluster status
    python -m citybrain.scale.cluster stop

In Python, ``with running_cluster(...) as state:`` starts a cluster and always stops what it started.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from citybrain import processes
from citybrain.scale.spark_session import check_java, spark_dir

HOST = "127.0.0.1"
DEFAULT_MASTER_PORT = 7077
DEFAULT_MASTER_WEBUI_PORT = 8080
DEFAULT_THRIFT_PORT = 10000
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"


class ClusterError(RuntimeError):
    """The cluster could not be started (or a precondition failed); the message says why."""


class ClusterState(dict):
    """The recorded state (as written to cluster.json), with attribute shortcuts for callers."""

    @property
    def master_url(self) -> str:
        return self["master_url"]

    @property
    def master_port(self) -> int:
        return self["master"]["port"]

    @property
    def master_webui_port(self) -> int:
        return self["master"]["webui_port"]

    @property
    def thrift_port(self) -> int | None:
        return (self.get("thrift") or {}).get("port")

    @property
    def pids(self) -> list[int]:
        return [entry["pid"] for entry in _entries(self)]

    @property
    def logs(self) -> dict[str, str]:
        return {entry["name"]: entry["log"] for entry in _entries(self)}


# --- where things are -------------------------------------------------------------------------------


def state_path() -> Path:
    return spark_dir() / "cluster.json"


def logs_dir() -> Path:
    return spark_dir() / "logs"


def spark_home() -> Path:
    """The pyspark wheel's directory: it is a complete SPARK_HOME (bin/, jars/)."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def read_state() -> ClusterState | None:
    path = state_path()
    if not path.exists():
        return None
    try:
        return ClusterState(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None


def _write_state(state: dict) -> None:
    path = state_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    temporary.replace(path)


# --- processes --------------------------------------------------------------------------------------

# Started by this process: reaped, so they do not linger as zombies.
_children: dict[int, subprocess.Popen] = {}


def _reap() -> None:
    for pid, proc in list(_children.items()):
        if proc.poll() is not None:
            _children.pop(pid, None)


def pid_alive(pid: int) -> bool:
    """The process exists and is not a zombie (this process's own ended children reaped first)."""
    _reap()
    return processes.alive(pid)


def group_members(pgid: int) -> list[int]:
    """Live processes of process group ``pgid`` (the JVMs, executors and Python workers under a leader)."""
    _reap()
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = processes.stat_fields(int(entry.name))
        if fields and fields[2] == str(pgid) and fields[0] not in processes.ENDED_STATES:
            members.append(int(entry.name))
    return members


def _ours(entry: dict) -> bool:
    """The recorded leader is still the process we started (not a pid reused since), or it is gone."""
    started = processes.start_time(entry["pid"])
    return started is None or entry.get("start_time") in (None, started)


def _signal_group(entry: dict, signum: int) -> None:
    if not _ours(entry):
        return
    try:
        os.killpg(entry["pgid"], signum)
    except ProcessLookupError:
        pass
    except PermissionError:
        pass


def _launch(name: str, command: list[str], env: dict[str, str], log: Path) -> dict:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        out.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(command)}\n".encode())
        out.flush()
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=spark_dir(),
            start_new_session=True,
        )
    _children[proc.pid] = proc
    return {
        "name": name,
        "pid": proc.pid,
        "pgid": proc.pid,
        "start_time": processes.start_time(proc.pid),
        "log": str(log),
        "command": command,
    }


def _tail(path: str | Path, lines: int = 40) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _fail(entry: dict, what: str) -> ClusterError:
    return ClusterError(f"{what}\n--- last lines of {entry['log']} ---\n{_tail(entry['log'])}")


# --- ports and readiness ----------------------------------------------------------------------------


def port_free(port: int, host: str = HOST) -> bool:
    """Nothing listens on ``host:port`` (a bind with SO_REUSEADDR succeeds, as Java's would)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def free_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def port_open(port: int, host: str = HOST, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def master_json(webui_port: int, host: str = HOST, timeout: float = 2.0) -> dict | None:
    """The Master's status page as JSON (``/json``): status, workers, aliveworkers, activeapps."""
    try:
        with urllib.request.urlopen(f"http://{host}:{webui_port}/json", timeout=timeout) as response:
            return json.loads(response.read().decode("utf-8"))
    except (OSError, ValueError):
        return None


def alive_workers(webui_port: int, host: str = HOST) -> int:
    info = master_json(webui_port, host) or {}
    return sum(1 for worker in info.get("workers", []) if worker.get("state") == "ALIVE")


def _await(entry: dict, what: str, ready, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if ready():
            return
        if not pid_alive(entry["pid"]):
            raise _fail(entry, f"{entry['name']} exited before {what}")
        if time.monotonic() > deadline:
            raise _fail(entry, f"{entry['name']}: no {what} after {timeout:.0f}s")
        time.sleep(0.5)


# --- start, stop, status ----------------------------------------------------------------------------


def _entries(state: dict) -> list[dict]:
    """Recorded processes, in stopping order: Thrift Server, Workers, Master."""
    return [e for e in [state.get("thrift"), *reversed(state.get("workers") or []), state.get("master")] if e]


def _running(state: dict | None) -> list[dict]:
    return [e for e in _entries(state or {}) if _ours(e) and group_members(e["pgid"])]


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    home = spark_home()
    env.update(
        {
            "SPARK_HOME": str(home),
            "SPARK_LOCAL_IP": HOST,
            "SPARK_LOCAL_HOSTNAME": "localhost",
            # An empty conf directory: no stray spark-defaults.conf or log4j2.properties from elsewhere.
            "SPARK_CONF_DIR": str(spark_dir() / "conf"),
            "SPARK_LOG_DIR": str(logs_dir()),
            "SPARK_WORKER_DIR": str(spark_dir() / "work"),
            "SPARK_DAEMON_MEMORY": os.environ.get("CITYBRAIN_SPARK_DAEMON_MEMORY", "512m"),
            "SPARK_MASTER_OPTS": "-Dspark.master.rest.enabled=false",
            "PYSPARK_PYTHON": os.environ.get("PYSPARK_PYTHON") or sys.executable,
        }
    )
    env.pop("PYSPARK_SUBMIT_ARGS", None)
    return env


def start(
    workers: int = 1,
    worker_cores: int = 1,
    worker_memory: str = "1g",
    master_port: int = DEFAULT_MASTER_PORT,
    master_webui_port: int = DEFAULT_MASTER_WEBUI_PORT,
    thrift_port: int = DEFAULT_THRIFT_PORT,
    *,
    worker_webui_ports: list[int] | None = None,
    executor_memory: str | None = None,
    thrift: bool = True,
    timeout: float = 90.0,
    thrift_timeout: float = 300.0,
) -> ClusterState:
    """Start a Master, ``workers`` Workers and (``thrift``) the Thrift Server; return the recorded state.

    Waits until the Master answers, every Worker is registered ALIVE and the Thrift port accepts
    connections. On any failure, stops whatever it started and raises :class:`ClusterError` with the
    tail of the relevant log."""
    check_java()
    if workers < 1:
        raise ClusterError("a cluster needs at least one worker (--workers 1)")
    running = _running(read_state())
    if running:
        names = ", ".join(f"{e['name']} (pid {e['pid']})" for e in running)
        raise ClusterError(
            f"a cluster is already running for {spark_dir()}: {names}; "
            f"stop it first with `python -m citybrain.scale.cluster stop`"
        )
    worker_webui_ports = list(worker_webui_ports or [])
    while len(worker_webui_ports) < workers:
        worker_webui_ports.append(free_port())
    wanted = [("master", master_port), ("master web UI", master_webui_port)]
    wanted += [(f"worker {i + 1} web UI", p) for i, p in enumerate(worker_webui_ports)]
    if thrift:
        wanted.append(("Thrift Server", thrift_port))
    ports = [p for _, p in wanted]
    if len(set(ports)) != len(ports):
        raise ClusterError(f"the cluster's ports must differ: {', '.join(f'{n} {p}' for n, p in wanted)}")
    for name, port in wanted:
        if not port_free(port):
            raise ClusterError(f"port {HOST}:{port} (for the {name}) is already in use; choose another port")

    spark_dir().mkdir(parents=True, exist_ok=True)
    (spark_dir() / "conf").mkdir(exist_ok=True)
    (spark_dir() / "work").mkdir(exist_ok=True)
    logs_dir().mkdir(parents=True, exist_ok=True)
    env = _child_env()
    spark_class = str(spark_home() / "bin" / "spark-class")
    master_url = f"spark://{HOST}:{master_port}"
    state = ClusterState(
        {
            "spark_dir": str(spark_dir()),
            "host": HOST,
            "master_url": master_url,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "master": None,
            "workers": [],
            "thrift": None,
        }
    )
    timings: dict[str, float] = {}
    began = time.monotonic()
    try:
        master = _launch(
            "master",
            [
                spark_class,
                MASTER_CLASS,
                "--host",
                HOST,
                "--port",
                str(master_port),
                "--webui-port",
                str(master_webui_port),
            ],
            env,
            logs_dir() / "master.log",
        )
        master.update(port=master_port, webui_port=master_webui_port)
        state["master"] = master
        _write_state(state)
        _await(
            master,
            f"master on {HOST}:{master_port}",
            lambda: (
                port_open(master_port) and (master_json(master_webui_port) or {}).get("status") == "ALIVE"
            ),
            timeout,
        )
        timings["master"] = round(time.monotonic() - began, 1)

        for index in range(workers):
            number = index + 1
            worker = _launch(
                f"worker {number}",
                [
                    spark_class,
                    WORKER_CLASS,
                    "--host",
                    HOST,
                    "--webui-port",
                    str(worker_webui_ports[index]),
                    "--cores",
                    str(worker_cores),
                    "--memory",
                    worker_memory,
                    "--work-dir",
                    str(spark_dir() / "work"),
                    master_url,
                ],
                env,
                logs_dir() / f"worker-{number}.log",
            )
            worker.update(webui_port=worker_webui_ports[index], cores=worker_cores, memory=worker_memory)
            state["workers"].append(worker)
            _write_state(state)
        for number, worker in enumerate(state["workers"], start=1):
            _await(
                worker,
                f"registration with the master (waiting for {number} ALIVE in http://{HOST}:{master_webui_port}/json)",
                lambda n=number: alive_workers(master_webui_port) >= n,
                timeout,
            )
        timings["workers"] = round(time.monotonic() - began, 1)

        if thrift:
            command = [
                sys.executable,
                "-m",
                "citybrain.scale.thrift_server",
                "--master",
                master_url,
                "--host",
                HOST,
                "--port",
                str(thrift_port),
                "--conf",
                f"spark.executor.memory={executor_memory or worker_memory}",
            ]
            server = _launch("thrift server", command, env, logs_dir() / "thrift-server.log")
            server.update(port=thrift_port)
            state["thrift"] = server
            _write_state(state)
            _await(
                server,
                f"Thrift port {HOST}:{thrift_port} accepting connections",
                lambda: port_open(thrift_port),
                thrift_timeout,
            )
            timings["thrift"] = round(time.monotonic() - began, 1)
    except BaseException:
        stop()
        raise
    state["timings"] = timings
    _write_state(state)
    return state


def _processes() -> dict[int, tuple[int, int]]:
    """Live processes: pid -> (parent pid, process group)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = processes.stat_fields(int(entry.name))
            if fields and fields[0] not in processes.ENDED_STATES:
                table[int(entry.name)] = (int(fields[1]), int(fields[2]))
    return table


def _tree(pgids: list[int]) -> dict[int, str | None]:
    """Every live process of these groups and all their descendants (a PySpark daemon makes its own
    group under an executor), with its start time."""
    table = _processes()
    found = {pid for pid, (_, pgid) in table.items() if pgid in pgids}
    frontier = set(found)
    while frontier:
        frontier = {pid for pid, (ppid, _) in table.items() if ppid in frontier and pid not in found}
        found |= frontier
    return {pid: processes.start_time(pid) for pid in found}


def _wait_gone(started: dict[int, str | None], seconds: float) -> dict[int, str | None]:
    """The processes of ``started`` (pid -> start time) still running after up to ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        left = {pid: t for pid, t in started.items() if pid_alive(pid) and processes.start_time(pid) == t}
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.2)


def stop(grace: float = 10.0) -> list[str]:
    """Stop every recorded process (Thrift Server, then Workers and Master); a no-op without a state file.

    Each leader gets SIGTERM (the Thrift driver then stops its server and session, a Worker its
    executors); after ``grace`` seconds its whole process group gets SIGTERM, and 3 s later SIGKILL, as do
    any descendants left outside the group. Returns the names of what was still running."""
    state = read_state()
    if state is None:
        return []
    stopped = []
    for batch in ([state.get("thrift")], [*(state.get("workers") or []), state.get("master")]):
        entries = [e for e in batch if e and _ours(e) and group_members(e["pgid"])]
        if not entries:
            continue
        stopped += [e["name"] for e in entries]
        tree = _tree([e["pgid"] for e in entries])
        for entry in entries:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if pid_alive(entry["pid"]):
                    os.kill(entry["pid"], signal.SIGTERM)
        left = _wait_gone(tree, grace)
        for signum, seconds in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
            if not left:
                break
            for entry in entries:
                _signal_group(entry, signum)
            for pid in left:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signum)
            left = _wait_gone(left, seconds)
    state_path().unlink(missing_ok=True)
    state["stopped_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    with contextlib.suppress(OSError):
        (logs_dir() / "cluster.last.json").write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    return stopped


def status() -> dict:
    """The recorded state with, per process, whether its group is alive; the Master's ALIVE workers."""
    state = read_state()
    if state is None:
        return {"running": False, "state_file": str(state_path())}
    for entry in _entries(state):
        entry["alive"] = bool(_ours(entry) and group_members(entry["pgid"]))
    master = state.get("master") or {}
    if master.get("alive"):
        info = master_json(master["webui_port"]) or {}
        state["alive_workers"] = sum(1 for w in info.get("workers", []) if w.get("state") == "ALIVE")
        state["active_apps"] = len(info.get("activeapps", []))
    thrift = state.get("thrift")
    if thrift:
        thrift["accepting"] = port_open(thrift["port"])
    state["running"] = any(e.get("alive") for e in _entries(state))
    state["state_file"] = str(state_path())
    return state


@contextlib.contextmanager
def running_cluster(**options) -> Iterator[ClusterState]:
    """``start(**options)``; yields the state; always stops what it started, also on exceptions."""
    try:
        yield start(**options)
    finally:
        stop()


# --- command line -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m citybrain.scale.cluster", description=__doc__.split("\n")[0]
    )
    parser.add_argument("command", choices=["start", "stop", "status"])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--worker-cores", type=int, default=1)
    parser.add_argument("--worker-memory", default="1g")
    parser.add_argument("--master-port", type=int, default=DEFAULT_MASTER_PORT)
    parser.add_argument("--master-webui-port", type=int, default=DEFAULT_MASTER_WEBUI_PORT)
    parser.add_argument("--thrift-port", type=int, default=DEFAULT_THRIFT_PORT)
    parser.add_argument("--no-thrift", action="store_true", help="master and workers only")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the Thrift Server")
    parser.add_argument(
        "--grace", type=float, default=10.0, help="seconds between SIGTERM and SIGKILL on stop"
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            began = time.monotonic()
            state = start(
                workers=args.workers,
                worker_cores=args.worker_cores,
                worker_memory=args.worker_memory,
                master_port=args.master_port,
                master_webui_port=args.master_webui_port,
                thrift_port=args.thrift_port,
                thrift=not args.no_thrift,
                thrift_timeout=args.timeout,
            )
            print(f"master  {state['master_url']}  (web UI http://{HOST}:{state['master']['webui_port']})")
            print(f"workers {len(state['workers'])} x {args.worker_cores} cores, {args.worker_memory}")
            if state.get("thrift"):
                print(
                    f"thrift  {HOST}:{state['thrift']['port']}  (CITYBRAIN_SPARK_THRIFT_PORT={state['thrift']['port']})"
                )
            print(f"state   {state_path()}; logs in {logs_dir()}; started in {time.monotonic() - began:.1f}s")
        elif args.command == "stop":
            began = time.monotonic()
            stopped = stop(grace=args.grace)
            print(
                f"stopped {', '.join(stopped)} in {time.monotonic() - began:.1f}s"
                if stopped
                else "nothing running"
            )
        else:
            info = status()
            print(json.dumps(info, indent=2))
            return 0 if info.get("running") else 3
    except (ClusterError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
