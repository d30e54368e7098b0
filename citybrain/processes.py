"""Whether a process runs, read from /proc: one answer for every part that watches processes it started.

The read-ahead worker, the dbt zygote's children and the Spark cluster's daemons are each watched by
process id. ``os.kill(pid, 0)`` alone says yes for a zombie (ended, not yet reaped by its parent), so a
watcher waiting for an ended child would wait for ever; the state letter in ``/proc/<pid>/stat`` tells the
two apart. Where ``/proc`` cannot be read (not Linux), ``os.kill`` is the answer.
"""

from __future__ import annotations

import os
from pathlib import Path

ENDED_STATES = ("Z", "X")  # zombie, dead: the state letter of a process that has ended


def stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state is [0], pgid [2], start time [19]), or
    None when there is no such process (or no /proc)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2 :].split()


def start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot: with the pid, it names one process for good."""
    fields = stat_fields(pid)
    return fields[19] if fields else None


def alive(pid: int) -> bool:
    """The process exists and has not ended (a zombie has)."""
    if pid <= 0:
        return False
    fields = stat_fields(pid)
    if fields is not None:
        return fields[0] not in ENDED_STATES
    if Path("/proc/self/stat").exists():
        return False  # /proc works: the process is gone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True
