"""k of small-cell suppression as a SQL function, so the dbt models read the one k of catalog/privacy.yaml.

dbt has no way to read a YAML file, and passing k with ``--vars`` (or an environment variable read while
dbt parses) would make a second home for it. Instead every engine connection dbt opens gets a zero-argument
function ``cb_small_cell_k()`` whose body is the literal k of ``citybrain.privacy.config.small_cell_k()``,
defined when the connection opens: the dbt-duckdb plugin (citybrain/transform/dbt_plugin.py) on DuckDB, the
session set-up (citybrain/scale/spark_functions.py) on Spark. The dbt macro ``small_cell_k()``
(dbt_project/macros/masking.sql) compiles to a call of it, and a DuckDB macro is expanded when the query is
bound, so the comparison is against a constant. The blocking check at publication reads the same Python
function (citybrain/quality/small_cells.py), so models, checks and the resource catalog cannot disagree.
"""

from __future__ import annotations

from citybrain.privacy.config import small_cell_k

FUNCTION = "cb_small_cell_k"


def function_statements(engine: str) -> list[str]:
    """The statements defining ``cb_small_cell_k()`` on ``engine`` ('duckdb' or 'spark'), k read now."""
    k = small_cell_k()
    if engine == "duckdb":
        return [f"create or replace temp macro {FUNCTION}() as {k}"]
    if engine == "spark":
        return [f"create or replace temporary function {FUNCTION}() returns int return {k}"]
    raise ValueError(f"no {FUNCTION} for engine {engine!r}")


def register(con, engine: str = "duckdb") -> None:
    """Define ``cb_small_cell_k()`` on a DuckDB connection or cursor (``engine='spark'``: a SparkSession)."""
    for statement in function_statements(engine):
        if engine == "spark":
            con.sql(statement)
        else:
            con.execute(statement)
