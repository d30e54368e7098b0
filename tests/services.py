"""Helpers shared by the tests that start real processes and databases: a throwaway PostgreSQL database and
stopping a process group (code servers, daemons, Dask clusters) for good."""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


def pg_connect(dbname: str):
    import psycopg2

    return psycopg2.connect(**PG, dbname=dbname, connect_timeout=3)


@contextmanager
def throwaway_pg_database(prefix: str) -> Iterator[str]:
    """A new, empty database, dropped afterwards even if Dagster still holds connections to it; the test
    is skipped, with the reason, when no PostgreSQL server answers."""
    import psycopg2

    try:
        admin = pg_connect("test")
    except psycopg2.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG['host']}:{PG['port']}: {str(exc).strip()}")
    admin.autocommit = True
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def stop_process_group(process: subprocess.Popen, grace: float = 5) -> None:
    """Stop a process started with ``start_new_session=True`` and everything it started, by process group:
    SIGTERM, then SIGKILL after ``grace`` seconds (`dagster code-server start` ignores SIGTERM)."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5)):
        if process.poll() is not None:
            return
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def observe_runs(instance, daemon: subprocess.Popen, log, seconds: float, done: set) -> list[dict]:
    """The status of every run of ``instance``, polled every 0.2 s until all are in ``done`` (or ``seconds``
    pass); fails with the log's tail if the daemon that starts them exits meanwhile."""
    import time

    observations = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        statuses = {r.run_id: r.status for r in instance.get_runs()}
        observations.append(statuses)
        if set(statuses.values()) <= done:
            break
        assert daemon.poll() is None, "daemon exited:\n" + log.read_text(errors="replace")[-3000:]
        time.sleep(0.2)
    return observations


@contextmanager
def lineage_receiver() -> Iterator[tuple[str, list[dict]]]:
    """A loopback HTTP server that answers 200 and keeps every JSON body POSTed to it (an OpenLineage
    endpoint such as Marquez's /api/v1/lineage, as far as a client can tell)."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the http.server name
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.append({"path": self.path, **json.loads(body)})
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()
