"""The run's dbt zygote (citybrain/scale/dbt_zygote.py): ``citybrain-dbt`` with ``$CITYBRAIN_DBT_ZYGOTE``
runs dbt in a child forked from the zygote, and to the process that started it (dagster-dbt) it is the same
command: the same output on its own pipes, the same exit code, SIGINT passed on; without a zygote that
answers it runs dbt itself; the zygote ends with the process that started it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from citybrain.dbt_paths import DBT_PROJECT_DIR
from citybrain.scale import dbt_zygote

DBT = str(Path(sys.executable).with_name("citybrain-dbt"))
LIST_INDICATORS = ["ls", "--select", "tag:indicator", "--resource-type", "model", "--quiet"]


@pytest.fixture
def zygote(lake, monkeypatch):
    monkeypatch.setenv("CITYBRAIN_WAREHOUSE", str(lake / "warehouse.duckdb"))
    started = dbt_zygote.start()
    assert started is not None and started.wait_ready()
    yield started
    started.stop()


def _dbt(args: list[str], socket_path: Path | None, **kwargs) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != dbt_zygote.ZYGOTE_ENV}
    if socket_path is not None:
        env[dbt_zygote.ZYGOTE_ENV] = str(socket_path)
    return subprocess.run(
        [DBT, *args], env=env, cwd=DBT_PROJECT_DIR, capture_output=True, text=True, timeout=300, **kwargs
    )


def _children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def test_the_same_output_and_exit_codes_through_the_zygote_and_without(zygote, tmp_path):
    listed = _dbt(LIST_INDICATORS, zygote.socket_path)
    alone = _dbt(LIST_INDICATORS, None)
    assert listed.returncode == alone.returncode == 0
    assert listed.stdout == alone.stdout and "ind_district_monthly" in listed.stdout
    refused = _dbt(["no-such-command"], zygote.socket_path)
    assert refused.returncode == _dbt(["no-such-command"], None).returncode == 2
    assert "No such command 'no-such-command'" in refused.stderr
    gone = _dbt(LIST_INDICATORS, tmp_path / "no-zygote.sock")  # nothing listens: dbt runs in the process
    assert gone.returncode == 0 and gone.stdout == alone.stdout


def test_dbt_runs_in_a_child_of_the_zygote(zygote):
    env = {**os.environ, dbt_zygote.ZYGOTE_ENV: str(zygote.socket_path)}
    command = [DBT, "--log-format", "json", *LIST_INDICATORS[:-1]]
    client = subprocess.Popen(command, env=env, cwd=DBT_PROJECT_DIR, stdout=subprocess.PIPE, text=True)
    output, _ = client.communicate(timeout=300)
    assert client.returncode == 0
    (pid,) = {json.loads(line)["info"]["pid"] for line in output.splitlines() if line.startswith("{")}
    assert pid not in (client.pid, zygote.process.pid)  # dbt logged from the zygote's child
    assert not _children(zygote.process.pid)  # it has exited, and nothing else was left running


def test_an_interrupt_reaches_dbt_and_ends_it(zygote):
    """dagster-dbt stops a cancelled step's dbt with SIGINT: sent to citybrain-dbt, it reaches the child."""
    slow = "select count(*) from range(1000000000000) as t(i) where i % 7 = 3"
    env = {**os.environ, dbt_zygote.ZYGOTE_ENV: str(zygote.socket_path)}
    process = subprocess.Popen(
        [DBT, "show", "--inline", slow],
        env=env,
        cwd=DBT_PROJECT_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while not _children(zygote.process.pid):  # the child has started
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(3)  # dbt is in the query
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) != 0
    deadline = time.monotonic() + 30
    while _children(zygote.process.pid):
        assert time.monotonic() < deadline, "dbt went on after the interrupt"
        time.sleep(0.1)


def test_the_zygote_ends_with_the_process_that_started_it(tmp_path):
    script = textwrap.dedent(
        """
        import sys, time
        from citybrain.scale import dbt_zygote
        zygote = dbt_zygote.start()
        assert zygote.wait_ready()
        print(zygote.process.pid, flush=True)
        time.sleep(600)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    zygote_pid = int(parent.stdout.readline())
    parent.kill()  # SIGKILL: no chance to stop the zygote itself
    parent.wait()
    deadline = time.monotonic() + 30
    while Path(f"/proc/{zygote_pid}").exists() and "Z" not in Path(f"/proc/{zygote_pid}/stat").read_text():
        assert time.monotonic() < deadline, "the zygote outlived the process that started it"
        time.sleep(0.2)
