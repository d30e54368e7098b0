"""The domain functions (``cb_*``) on Spark: the Python ones of ``udfs.py`` as UDFs, the SQL ones as
SQL functions. Same names and results as on DuckDB; the parity check holds them to that."""

from __future__ import annotations

from pathlib import Path

from citybrain.transform import udfs

SQL_FUNCTIONS = Path(udfs.__file__).with_name("sql") / "masking_spark.sql"


def _null_safe(function):
    def wrapper(*args):
        return None if any(a is None for a in args) else function(*args)

    return wrapper


def python_functions():
    """(name, function, Spark return type) for every Python domain function."""
    from pyspark.sql import types as t

    def first(f):
        return lambda lng, lat: r[0] if (r := f(lng, lat)) else None

    def second(f):
        return lambda lng, lat: r[1] if (r := f(lng, lat)) else None

    return [
        ("cb_halfwidth", udfs.halfwidth, t.StringType()),
        ("cb_ric_normalize", udfs.ric_normalize, t.StringType()),
        ("cb_ric_problem", udfs.ric_problem, t.StringType()),
        ("cb_ric_birth_date", udfs.ric_birth_date, t.DateType()),
        ("cb_ric_sex", udfs.ric_sex, t.StringType()),
        ("cb_uscc_normalize", udfs.uscc_normalize, t.StringType()),
        ("cb_uscc_problem", udfs.uscc_problem, t.StringType()),
        ("cb_gcj02_to_wgs84_lng", first(udfs.gcj02_to_wgs84), t.DoubleType()),
        ("cb_gcj02_to_wgs84_lat", second(udfs.gcj02_to_wgs84), t.DoubleType()),
        ("cb_bd09_to_wgs84_lng", first(udfs.bd09_to_wgs84), t.DoubleType()),
        ("cb_bd09_to_wgs84_lat", second(udfs.bd09_to_wgs84), t.DoubleType()),
        ("cb_h3_cell", udfs.h3_cell, t.StringType()),
        ("cb_h3_lat", udfs.h3_lat, t.DoubleType()),
        ("cb_h3_lng", udfs.h3_lng, t.DoubleType()),
        ("cb_pseudonym", udfs._salted_pseudonym(), t.StringType()),
        ("cb_scrub_text", udfs.scrub_text, t.StringType()),
    ]


def sql_statements() -> list[str]:
    statements = []
    for statement in SQL_FUNCTIONS.read_text(encoding="utf-8").split(";"):
        body = "\n".join(line for line in statement.splitlines() if not line.lstrip().startswith("--"))
        if body.strip():
            statements.append(body)
    return statements


def register(spark) -> None:
    for name, function, returns in python_functions():
        spark.udf.register(name, _null_safe(function), returns)
    for statement in sql_statements():
        spark.sql(statement)
