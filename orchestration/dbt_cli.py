"""The dbt CLI resource, told the installed dbt version instead of asking a subprocess for it.

dagster-dbt (0.29) runs ``dbt --version`` once per run before the first dbt step, to tell dbt-core from
the Fusion engine. That is a whole dbt start-up (about 3 s on 2 cores) to print a version the
environment already knows: both executables we run, the venv's ``dbt`` and ``citybrain-dbt`` (which
starts dbt-core after preparing Spark), are the installed ``dbt-core`` package. tests/test_dbt_cli.py
checks the answer equals ``dbt --version`` and fails loudly if dagster-dbt renames the hook.
"""

from __future__ import annotations

import importlib.metadata
from functools import cached_property

from dagster_dbt import DbtCliResource
from packaging import version


class InstalledDbtCliResource(DbtCliResource):
    """``DbtCliResource`` whose dbt version comes from the installed dbt-core package."""

    @cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(importlib.metadata.version("dbt-core"))
