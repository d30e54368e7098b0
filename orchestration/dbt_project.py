"""The dbt project, built once. No ``@dbt_assets`` here: ``dagster-dbt project prepare-and-package
--file orchestration/dbt_project.py`` imports this module to write ``target/manifest.json``."""

from __future__ import annotations

from functools import cache

from dagster_dbt import DbtProject

from citybrain.settings import REPO_ROOT

DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"


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
