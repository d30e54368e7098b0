"""citybrain.processes: a running child is alive; an ended one is not, reaped or still a zombie."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from citybrain import processes


def _wait_for_state(pid: int, letter: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        fields = processes.stat_fields(pid)
        if fields and fields[0] == letter:
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} never reached state {letter}: {processes.stat_fields(pid)}")


def test_running_zombie_and_reaped_children():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert processes.alive(child.pid)
        assert processes.start_time(child.pid) is not None
        child.send_signal(signal.SIGKILL)
        _wait_for_state(child.pid, "Z")  # ended, not yet waited for: os.kill(pid, 0) would still succeed
        assert not processes.alive(child.pid)
    finally:
        child.kill()
        child.wait()
    assert not processes.alive(child.pid)
    assert processes.start_time(child.pid) is None


def test_this_process_and_impossible_ids():
    import os

    assert processes.alive(os.getpid())
    assert not processes.alive(0)
    assert not processes.alive(-1)
