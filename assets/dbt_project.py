"""The dbt project, built once. No ``@dbt_assets`` here: ``dagster-dbt project prepare-and-package
--file assets/dbt_project.py`` imports this module to write ``target/manifest.json``."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from dagster_dbt import DbtProject

from citybrain.dbt_paths import DBT_PROJECT_DIR


@cache
def dbt_project() -> DbtProject:
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
    parse the file three times). Treat it as read-only."""
    return json.loads(citybrain_dbt_project.manifest_path.read_text(encoding="utf-8"))
