"""The audit log: who read or published what, when, and what came of it.

One JSON object per line in ``$CITYBRAIN_HOME/audit/audit.jsonl`` (``CITYBRAIN_AUDIT_DIR`` overrides the
directory), appended under an exclusive lock and fsynced. Each record carries the SHA-256 of the record
before it (``prev``) and its own hash over its content and ``prev``, so editing, inserting or deleting any
record breaks the chain at that point; ``head.json`` remembers the last sequence number and hash, so
cutting records off the end is detected too. ``verify`` walks the chain.

A hash chain makes tampering visible, it does not prevent it: whoever can write the directory can rewrite
the whole chain and head consistently. In production the directory belongs to the service account that
runs the access layer (analysts reach it only through ``citybrain query``), and the file is shipped to
append-only storage (``chattr +a``, WORM bucket or syslog) whose copy anchors the chain.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from citybrain import settings
from citybrain.access.identity import os_login

AUDIT_FILE = "audit.jsonl"
HEAD_FILE = "head.json"
LOCK_FILE = ".lock"
GENESIS = "0" * 64
ACTIONS = (
    "query", "export", "publication", "audit_query", "connect",
    # The sharing service (citybrain/sharing, docs/SHARING.md): identities, the application workflow, grants.
    "login", "account", "token", "application", "grant", "read",
)  # fmt: skip
OUTCOMES = ("ok", "rejected", "denied", "error")


def audit_dir() -> Path:
    return Path(os.environ.get("CITYBRAIN_AUDIT_DIR") or settings.home() / "audit").resolve()


def audit_path(directory: Path | None = None) -> Path:
    return (directory or audit_dir()) / AUDIT_FILE


def current_user(explicit: str | None = None) -> str:
    """The name a record is filed under: what the caller established (a token's account, ``operator:<login>``,
    a sharing step's actor), else the OS login. Never read from a flag or an environment variable
    (``citybrain.access.identity``)."""
    return explicit or os_login()


def _digest(prev: str, body: dict) -> str:
    canonical = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{prev}\n{canonical}".encode()).hexdigest()


def append(
    action: str,
    *,
    outcome: str,
    user: str | None,
    via: str,
    tiers: Iterable[str] = (),
    tables: Iterable[str] = (),
    sql: str | None = None,
    rows: int | None = None,
    run_id: str | None = None,
    target: str | None = None,
    detail: str | None = None,
    application_id: int | None = None,
    grant_id: int | None = None,
    directory: Path | None = None,
) -> dict:
    """Append one record and return it. Never skipped: if the log cannot be written the caller fails."""
    if action not in ACTIONS or outcome not in OUTCOMES:
        raise ValueError(f"audit: unknown action {action!r} or outcome {outcome!r}")
    directory = directory or audit_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o750)
    body = {
        "at": datetime.now(UTC).isoformat(timespec="microseconds"),
        "user": current_user(user),
        "os_user": os_login(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "via": via,
        "action": action,
        "outcome": outcome,
        "tiers": sorted(set(tiers)),
        "tables": sorted(set(tables)),
        "sql": sql,
        "rows": rows,
        "run_id": run_id,
        "target": target,
        "detail": detail,
        # The sharing service's application and grant a step or a read belongs to (None elsewhere).
        "application_id": application_id,
        "grant_id": grant_id,
    }
    with _locked(directory):
        path = directory / AUDIT_FILE
        last = _last_record(path)
        body["seq"] = (last["seq"] + 1) if last else 1
        body["prev"] = last["hash"] if last else GENESIS
        record = {**body, "hash": _digest(body["prev"], body)}
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        _write_head(directory, record)
    return record


class _locked:
    """An exclusive flock on ``audit/.lock``: appends from concurrent processes stay one chain."""

    def __init__(self, directory: Path):
        self.path = directory / LOCK_FILE

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o640)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def _last_record(path: Path) -> dict | None:
    """The last line, read backwards from the end (the log grows without bound)."""
    if not path.exists() or path.stat().st_size == 0:
        return None
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        end = handle.tell()
        chunk, position = b"", end
        while position > 0:
            step = min(65536, position)
            position -= step
            handle.seek(position)
            chunk = handle.read(step) + chunk
            lines = chunk.rstrip(b"\n").split(b"\n")
            if len(lines) > 1 or position == 0:
                return json.loads(lines[-1])
    return None


def _write_head(directory: Path, record: dict) -> None:
    temporary = directory / f".{HEAD_FILE}.{os.getpid()}"
    temporary.write_text(json.dumps({"seq": record["seq"], "hash": record["hash"]}), encoding="utf-8")
    os.replace(temporary, directory / HEAD_FILE)


def read_records(directory: Path | None = None) -> list[dict]:
    path = audit_path(directory)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@dataclass
class Verification:
    records: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(directory: Path | None = None) -> Verification:
    """Walk the chain: every record parses, numbers run 1, 2, 3 …, ``prev`` is the hash of the record before,
    each hash matches its content, and the last record is the one ``head.json`` names."""
    directory = directory or audit_dir()
    path = directory / AUDIT_FILE
    result = Verification()
    if not path.exists():
        if (directory / HEAD_FILE).exists():
            result.problems.append(f"{path} is missing but {HEAD_FILE} says records were written")
        return result
    prev, expected_seq = GENESIS, 1
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            record = json.loads(line)
            body = {k: v for k, v in record.items() if k != "hash"}
            claimed = record["hash"]
            seq = record["seq"]
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            result.problems.append(f"line {number}: not an audit record ({error})")
            break
        if seq != expected_seq:
            result.problems.append(
                f"line {number}: sequence {seq}, expected {expected_seq} (record deleted or inserted)"
            )
        if record.get("prev") != prev:
            result.problems.append(
                f"line {number} (seq {seq}): does not follow the previous record (chain broken)"
            )
        if _digest(record.get("prev", ""), body) != claimed:
            result.problems.append(
                f"line {number} (seq {seq}): content does not match its hash (record edited)"
            )
        if result.problems:
            break
        prev, expected_seq = claimed, seq + 1
        result.records += 1
    head_path = directory / HEAD_FILE
    if not result.problems and head_path.exists():
        head = json.loads(head_path.read_text(encoding="utf-8"))
        if head.get("seq") != expected_seq - 1 or head.get("hash") != prev:
            result.problems.append(
                f"the log ends at seq {expected_seq - 1} but {HEAD_FILE} records seq {head.get('seq')}: "
                "records were cut off the end (or the head was changed)"
            )
    elif not result.problems and result.records:
        result.problems.append(f"{HEAD_FILE} is missing")
    return result
