"""The dbt project, built once. No ``@dbt_assets`` here: ``dagster-dbt project prepare-and-package
--file assets/dbt_project.py`` imports this module to write ``target/manifest.json``."""

from __future__ import annotations

import os
import shutil
import sys
from functools import cache
from pathlib import Path
from typing import Any

from dagster_dbt import DbtProject

from citybrain.dbt_paths import DBT_PROJECT_DIR, read_manifest


def _installed_dbt_on_path() -> None:
    """Put this interpreter's ``bin`` first on PATH when the ``dbt`` found there is not the installed one.

    Under ``dagster dev``, dagster-dbt's preparer runs ``dbt`` from PATH (``prepare_if_dev``): started as
    ``.venv/bin/dagster dev -w workspace.yaml`` without the venv on PATH, there is no ``dbt`` (or another
    one) and the code location fails to load. The installed dbt-core is the one beside this interpreter."""
    installed = Path(sys.executable).parent / "dbt"
    found = shutil.which("dbt")
    if installed.exists() and (found is None or Path(found).resolve() != installed.resolve()):
        os.environ["PATH"] = str(installed.parent) + os.pathsep + os.environ.get("PATH", "")


@cache
def dbt_project() -> DbtProject:
    _installed_dbt_on_path()
    project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
    project.prepare_if_dev()
    if not project.manifest_path.exists():
        # A checkout where `make setup` has not parsed the project yet (e.g. a fresh clone used
        # directly from an IDE): parse now rather than fail at import.
        project.preparer.prepare(project)
    return project


citybrain_dbt_project = dbt_project()


@cache
def parsed_manifest() -> dict[str, Any]:
    """The project's ``target/manifest.json``, parsed once per process: the three ``@dbt_assets``, the
    publication's dependencies and the row counts all read this one copy (each definitions load used to
    parse the file three times). Treat it as read-only. Read again if caught while another process's dbt
    rewrites it in place (``read_manifest``)."""
    return read_manifest(citybrain_dbt_project.manifest_path)
