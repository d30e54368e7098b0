"""A process that has imported dbt once and forks a dbt process, already warm, for each dbt step of a run.

Every dbt step starts a new ``citybrain-dbt`` process (dagster-dbt runs dbt as a subprocess and reads its
structured log), and each one imported dbt-core, its DuckDB adapter and our plugin before doing anything:
about 1.5 s on two cores, three times a night (plus the classification check's compile when it needs one),
and in every test that builds the pool.

Each run starts one zygote (``start_for_this_process``: ``citybrain run`` in its own process, a launched run
in its run worker, orchestration/executors.py) and exports its socket in ``$CITYBRAIN_DBT_ZYGOTE``. ``citybrain-dbt`` started with that variable (``run_in_zygote``) connects to it,
hands over its standard input, output and error (file descriptors passed over the Unix socket), its
arguments, environment and working directory, and waits. The zygote forks; the child takes over those
descriptors, environment and directory and runs exactly what ``citybrain-dbt`` would have run in its own
process (``citybrain.scale.dbt_cli.run_dbt``), then reports the exit code. ``citybrain-dbt`` exits with it,
and passes on SIGINT/SIGTERM (dagster-dbt interrupts dbt with SIGINT when a run is cancelled) to the child.

Nothing changes for dagster-dbt: the process it started writes dbt's output to the same pipes and exits
with dbt's code. Without the variable, when the zygote does not answer, or on a platform without
``fork``, ``citybrain-dbt`` runs dbt itself, as before. The zygote stays single-threaded (it forks), ends
with the process that started it, and serves one lake's run: the run's environment reaches the child,
and nothing the zygote imported reads the environment at import.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from citybrain import processes

ZYGOTE_ENV = "CITYBRAIN_DBT_ZYGOTE"  # the socket of the run's zygote
READY_SECONDS = 60.0  # how long ``wait_ready`` waits for the zygote to have imported dbt
CONNECT_SECONDS = 5.0  # a zygote that does not take a request in this time is not used
CHILD_START_SECONDS = 120.0  # from a request taken to its child's pid; beyond it the command fails
PARENT_CHECK_SECONDS = 1.0  # how often the zygote looks whether the process that started it is gone
STD_FDS = (0, 1, 2)
SERVER_MODULE = "citybrain.scale.dbt_zygote_server"  # the zygote's program: serve() with dbt_cli's functions


class Zygote:
    """A running zygote: its process and socket. ``stop`` ends it; children already forked finish."""

    def __init__(self, process: subprocess.Popen, directory: Path):
        self.process = process
        self.directory = directory
        self.socket_path = directory / "dbt.sock"

    def wait_ready(self, timeout: float = READY_SECONDS) -> bool:
        """Wait until the zygote listens; False if it ended or did not get there within ``timeout``."""
        import selectors

        assert self.process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            if not selector.select(timeout):
                return False
        return self.process.stdout.readline().strip() == b"ready"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        with contextlib.suppress(OSError):
            self.socket_path.unlink()
        with contextlib.suppress(OSError):
            self.directory.rmdir()


def start() -> Zygote | None:
    """Start a zygote; None where it cannot run (no ``fork``). It imports dbt in the background (about
    1.5 s) while the run's first steps go on: a dbt step that comes before it listens starts dbt itself."""
    if not hasattr(os, "fork") or not hasattr(socket, "send_fds"):
        return None
    directory = Path(tempfile.mkdtemp(prefix="citybrain-dbt-"))
    process = subprocess.Popen(
        [sys.executable, "-m", SERVER_MODULE, str(directory / "dbt.sock"), str(os.getpid())],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,  # one line, "ready", once it listens (``wait_ready``)
        stderr=subprocess.DEVNULL,  # not the run's output (import warnings); its children write to their own
    )
    return Zygote(process, directory)


def start_for_this_process() -> Zygote | None:
    """A zygote for the dbt steps this process runs or starts, its socket exported in ``$CITYBRAIN_DBT_ZYGOTE``
    (their ``citybrain-dbt`` inherits it); None on the Spark targets (their dbt process builds a Spark
    session), without ``fork``, or when this process already has one (a step process of a run that has)."""
    from citybrain import settings

    if settings.dbt_target() != "duckdb" or os.environ.get(ZYGOTE_ENV):
        return None
    zygote = start()
    if zygote is not None:
        os.environ[ZYGOTE_ENV] = str(zygote.socket_path)
    return zygote


def stop_for_this_process(zygote: Zygote | None) -> None:
    """Stop what ``start_for_this_process`` started; later dbt steps of this process start dbt themselves."""
    if zygote is not None:
        os.environ.pop(ZYGOTE_ENV, None)
        zygote.stop()


# --- the zygote ---------------------------------------------------------------------------------------


def serve(socket_path: str, parent_pid: int, prepare, run_dbt) -> None:
    """``prepare()`` (import dbt), listen on ``socket_path``, fork a child for each request that runs
    ``run_dbt(argv)``; end when the parent is gone. Started as ``dbt_zygote_server.py``."""
    from citybrain.process_gc import collect_less_often, freeze_long_lived

    collect_less_often()
    prepare()
    freeze_long_lived()  # the children share these pages and never scan these objects
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    signal.signal(signal.SIGTERM, lambda *_: _leave(socket_path))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(socket_path)
    listener.listen(16)
    listener.settimeout(PARENT_CHECK_SECONDS)
    print("ready", flush=True)
    while os.getppid() == parent_pid:
        try:
            connection, _ = listener.accept()
        except TimeoutError:
            continue
        connection.settimeout(CONNECT_SECONDS)
        try:
            request, fds = _receive_request(connection)
        except (OSError, ValueError):
            connection.close()
            continue
        pid = os.fork()
        if pid == 0:
            listener.close()
            _child(connection, request, fds, run_dbt)  # never returns
        for fd in fds:
            os.close(fd)
        connection.close()
    _leave(socket_path)


def _leave(socket_path: str) -> None:
    """End the zygote and remove its socket and directory (a launched run's zygote ends with its run worker,
    which never calls ``stop``). Children already forked finish on their own."""
    with contextlib.suppress(OSError):
        os.unlink(socket_path)
    with contextlib.suppress(OSError):
        os.rmdir(os.path.dirname(socket_path))
    os._exit(0)


def _receive_request(connection: socket.socket) -> tuple[dict, list[int]]:
    message, fds, _, _ = socket.recv_fds(connection, 1 << 20, len(STD_FDS))
    if len(fds) != len(STD_FDS):
        for fd in fds:
            os.close(fd)
        raise ValueError("a request carries standard input, output and error")
    data = bytearray(message)
    while not data.endswith(b"\n"):
        more = connection.recv(1 << 20)
        if not more:
            raise ValueError("request cut short")
        data += more
    return json.loads(data), fds


def _child(connection: socket.socket, request: dict, fds: list[int], run_dbt) -> None:
    """In the forked child: become the requesting process (descriptors, environment, directory, signals),
    run dbt, report the exit code, exit."""
    code = 1
    try:
        connection.settimeout(None)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for target, fd in zip(STD_FDS, fds, strict=True):
            os.dup2(fd, target)
            os.close(fd)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        sys.argv = ["citybrain-dbt", *request["argv"]]
        _reopen_standard_streams()
        connection.sendall(f"{os.getpid()}\n".encode())
        code = run_dbt(request["argv"])
    except BaseException as error:  # noqa: BLE001 - a child must report and exit, never return to serve()
        with contextlib.suppress(Exception):
            print(f"citybrain-dbt (zygote child): {type(error).__name__}: {error}", file=sys.stderr)
        code = 130 if isinstance(error, KeyboardInterrupt) else 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        with contextlib.suppress(Exception):
            atexit._run_exitfuncs()  # what the interpreter runs at exit (dbt's log handlers, for one)
        with contextlib.suppress(Exception):
            connection.sendall(f"exit {code}\n".encode())
        os._exit(code)


def _reopen_standard_streams() -> None:
    """sys.stdout and sys.stderr as a new process on these descriptors would have them: line-buffered
    where Python would be unbuffered ($PYTHONUNBUFFERED, which dagster-dbt sets) or on a terminal."""
    unbuffered = bool(os.environ.get("PYTHONUNBUFFERED"))
    for name, fd in (("stdout", 1), ("stderr", 2)):
        line_buffered = unbuffered or name == "stderr" or os.isatty(fd)
        stream = open(fd, "w", encoding="utf-8", errors="backslashreplace", closefd=False, buffering=-1)  # noqa: SIM115
        stream.reconfigure(line_buffering=line_buffered, write_through=unbuffered)
        setattr(sys, name, stream)
    sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115


# --- the client (citybrain-dbt) ------------------------------------------------------------------------


def run_in_zygote(argv: list[str]) -> int | None:
    """Run ``citybrain-dbt argv`` in the zygote of ``$CITYBRAIN_DBT_ZYGOTE``: dbt's exit code, or None when
    there is no zygote to run it (not set, gone, not answering): then the caller runs dbt itself."""
    path = os.environ.get(ZYGOTE_ENV)
    if not path or not hasattr(socket, "send_fds"):
        return None
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.settimeout(CONNECT_SECONDS)
    try:
        connection.connect(path)
        request = json.dumps({"argv": argv, "env": dict(os.environ), "cwd": os.getcwd()}) + "\n"
        socket.send_fds(connection, [request.encode()], list(STD_FDS))
    except OSError:  # nothing listens, or it refused the request: no dbt was started
        connection.close()
        return None
    reader = connection.makefile("rb")
    connection.settimeout(CHILD_START_SECONDS)
    try:
        first = reader.readline()  # the child's pid, sent just before it runs dbt
    except TimeoutError:  # a child may yet run dbt: running it here as well could build twice
        print(
            f"citybrain-dbt: the dbt zygote at {path} started no dbt in {CHILD_START_SECONDS:.0f} s",
            file=sys.stderr,
        )
        return 1
    if not first.strip().isdigit():  # closed, or the child failed before dbt: dbt never ran there
        connection.close()
        return None
    child = int(first)
    connection.settimeout(None)

    def forward(signum, _frame):
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, forward)
    return _exit_code(reader, child)


def _exit_code(reader, child: int) -> int:
    """The child's exit code as it reports it; 1 (and a line on stderr) when it ended without reporting."""
    for line in reader:
        if line.startswith(b"exit "):
            return int(line.split()[1])
    while processes.alive(child):  # connection closed: the child was killed, or is about to exit
        time.sleep(0.05)
    print(f"citybrain-dbt: dbt (process {child}) ended without an exit code", file=sys.stderr)
    return 1
