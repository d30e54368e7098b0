"""Where the dbt project and its parsed manifest are, for the library and the asset layer alike.

The library reads the manifest (model columns for the quality gate, lineage for the resource catalog)
without Dagster: the dbt project handle (``assets/dbt_project.py``) is the asset layer's, and takes its
directory from here so the path is written once.
"""

from __future__ import annotations

import subprocess
import sys
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
