"""dbt's partial-parse state, kept per warehouse and vars so a dbt step does not re-parse the project.

dbt re-parses the whole project (seconds per step) unless the partial_parse.msgpack it finds was written
with the same profile (the warehouse path is in it) and the same --vars. dagster-dbt copies the project's
own file, written by `dbt parse` for the default warehouse, so every step of every run re-parsed. Keep the
parse state per warehouse and vars instead: the indicators step reuses the first dbt step's, the next
night's first step the indicators'. dbt still checks the files, profile and vars of the state it is given,
so a stale one only means a full parse, as before.
"""

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path

from assets.dbt_project import citybrain_dbt_project

PARSE_STATE_DIR = "partial_parse_by_profile"  # under dbt_project/target
PARSE_STATES_KEPT = 8  # warehouses (lakes, test lakes) whose parse state is kept, most recent first


def seed_parse_state(target: Path, warehouse_path, args: list[str]) -> Path:
    """Copy the kept state for this warehouse and ``args`` into ``target``; the state's path, to keep
    the one dbt writes there afterwards (``keep_parse_state``)."""
    key = hashlib.sha256(f"{warehouse_path}\0{json.dumps(args)}".encode()).hexdigest()[:16]
    state = citybrain_dbt_project.project_dir / "target" / PARSE_STATE_DIR / f"{key}.msgpack"
    if state.exists():
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(state, target / "partial_parse.msgpack")
    return state


def keep_parse_state(target: Path, state: Path) -> None:
    """Keep the state dbt wrote into ``target`` as ``state``; prune all but the most recent ones."""
    written = target / "partial_parse.msgpack"
    if written.exists():
        state.parent.mkdir(parents=True, exist_ok=True)
        partial = state.with_name(f"{state.name}.{uuid.uuid4().hex[:8]}")
        shutil.copyfile(written, partial)
        os.replace(partial, state)  # atomic: another run may be reading it
        states = sorted(state.parent.glob("*.msgpack"), key=_mtime, reverse=True)
        for old in states[PARSE_STATES_KEPT:]:
            old.unlink(missing_ok=True)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:  # pruned by another run meanwhile
        return 0.0
