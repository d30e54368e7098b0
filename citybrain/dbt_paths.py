"""Where the dbt project and its parsed manifest are, for the library and the asset layer alike.

The library reads the manifest (model columns for the quality gate, lineage for the resource catalog)
without Dagster: the dbt project handle (``assets/dbt_project.py``) is the asset layer's, and takes its
directory from here so the path is written once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from citybrain.settings import REPO_ROOT

DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
MANIFEST_PATH = DBT_PROJECT_DIR / "target" / "manifest.json"


def manifest_path() -> Path:
    """``target/manifest.json``, parsed first if absent (a checkout where ``make setup`` has not run yet,
    e.g. a fresh clone used from an IDE): the same ``dbt parse`` the Dagster preparer runs, so a library
    caller never depends on the asset layer having been imported."""
    if not MANIFEST_PATH.exists():
        dbt = Path(sys.executable).with_name("dbt")
        subprocess.run(
            [str(dbt), "parse", "--quiet", "--project-dir", str(DBT_PROJECT_DIR),
             "--profiles-dir", str(DBT_PROJECT_DIR)],
            cwd=DBT_PROJECT_DIR, check=True,
        )  # fmt: skip
    return MANIFEST_PATH


def read_manifest(path: Path | None = None, wait_seconds: float = 10.0) -> dict:
    """The parsed manifest at ``path`` (default: :func:`manifest_path`). dbt rewrites ``target/manifest.json``
    in place, not by renaming a finished file, so a reader in another process (the quality gate beside a
    ``dbt parse``) can find it half-written: a file that does not parse is read again until it does or
    ``wait_seconds`` have passed, and only then is the error raised."""
    path = Path(path) if path else manifest_path()
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.2)
