"""The dbt CLI resource without two fixed costs of dagster-dbt's that buy us nothing.

* dagster-dbt (0.29) runs ``dbt --version`` once per run before the first dbt step, to tell dbt-core from
  the Fusion engine. That is a whole dbt start-up (about 3 s on 2 cores) to print a version the
  environment already knows: the executable we run, ``citybrain-dbt`` (dbt-core's own command line, after
  preparing Spark on the Spark targets), is the installed ``dbt-core`` package.
* For every ``cli`` call it also builds a dbt adapter inside the Dagster process (parsing the project's
  macros and reading dbt's partial-parse file: about 1 s per dbt step), used only by its
  ``fetch_row_counts`` / ``fetch_column_metadata``, which we do not call (assets/dbt/row_counts.py counts
  rows once dbt has released the warehouse; such an adapter would hold a DuckDB connection open).

tests/test_dbt_cli.py checks the version equals ``dbt --version``, that a dbt step's invocation carries no
adapter, and fails loudly if dagster-dbt renames either hook.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Sequence
from functools import cached_property

from dagster_dbt import DbtCliResource
from packaging import version


class InstalledDbtCliResource(DbtCliResource):
    """``DbtCliResource`` whose dbt version comes from the installed dbt-core package."""

    @cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(importlib.metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> None:
        """No in-process dbt adapter (see the module docstring); dagster-dbt's invocation takes ``None``."""
        return None
