"""The domain functions (``cb_*``) on Spark: the Python ones of ``udfs.py`` as UDFs, the SQL ones as
SQL functions. Same names and results as on DuckDB; the parity check holds them to that."""

from __future__ import annotations

from pathlib import Path

from citybrain.transform import udfs

SQL_FUNCTIONS = Path(udfs.__file__).with_name("sql") / "masking_spark.sql"


def register(spark) -> None:
    from pyspark.sql import types as t

    types = {
        "varchar": t.StringType(),
        "double": t.DoubleType(),
        "integer": t.IntegerType(),
        "date": t.DateType(),
    }
    for name, function, _parameters, returns in udfs.functions():
        spark.udf.register(name, udfs.null_safe(function), types[returns])
    # Free text is scrubbed with the registry's names, read from the lake (udfs.lake_scrubber).
    spark.udf.register("cb_scrub_text", udfs.null_safe(udfs.lake_scrubber()), types["varchar"])
    for statement in udfs.sql_statements(SQL_FUNCTIONS):
        spark.sql(statement)
    from citybrain.privacy import small_cells

    small_cells.register(spark, engine="spark")  # cb_small_cell_k(): k of catalog/privacy.yaml
