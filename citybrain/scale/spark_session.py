"""A Spark session that can build the pool: the lake's sources as views, the domain functions as UDFs.

The same Python functions that dbt-duckdb registers on DuckDB (``citybrain/transform/udfs.py``) are
registered here as Spark Python UDFs, and the pure-SQL masking functions as Spark SQL functions
(``citybrain/transform/sql/masking_spark.sql``), under the same ``cb_*`` names: the dbt macros dispatch to
them, and the lineage check recognises them on both engines.

Used in three places: the ``citybrain-dbt`` wrapper (dbt-spark ``method: session`` picks up this session
through ``SparkSession.builder.getOrCreate()``), the Thrift Server launcher of the cluster
(``citybrain/scale/thrift_server.py``), and the parity check.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from citybrain import settings

SPARK_MASTER_ENV = "CITYBRAIN_SPARK_MASTER"


def spark_dir() -> Path:
    """Spark's own state for this lake: the metastore (Derby) and the warehouse of built tables."""
    return Path(os.environ.get("CITYBRAIN_SPARK_DIR") or settings.home() / "spark").resolve()


def check_java() -> str:
    """The java executable Spark will use, or a clear error naming the fix."""
    java_home = os.environ.get("JAVA_HOME")
    java = Path(java_home) / "bin" / "java" if java_home else shutil.which("java")
    if not java or not Path(java).exists():
        raise RuntimeError(
            "no Java found: Spark needs a Java 17 runtime. Install Debian's package "
            "(`apt-get install -y openjdk-17-jre-headless`) or set JAVA_HOME to a JDK 17."
        )
    return str(java)


def session_config(master: str | None = None) -> dict[str, str]:
    """Spark settings every City Brain session shares: one place, so a session and a cluster agree."""
    state = spark_dir()
    metastore = state / "metastore_db"
    python = os.environ.get("PYSPARK_PYTHON") or sys.executable
    return {
        "spark.master": master or os.environ.get(SPARK_MASTER_ENV) or "local[2]",
        "spark.app.name": "citybrain",
        "spark.ui.enabled": "false",
        # No progress bars on the console: dbt's JSON log lines share stdout with Spark, and dagster-dbt
        # drops a line a bar was drawn in front of (the model then has no output and its step skips).
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.warehouse.dir": str(state / "warehouse"),
        "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={metastore};create=true",
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
        "spark.sql.shuffle.partitions": os.environ.get("CITYBRAIN_SPARK_SHUFFLE_PARTITIONS", "8"),
        "spark.sql.adaptive.enabled": "true",
        "spark.driver.memory": os.environ.get("CITYBRAIN_SPARK_DRIVER_MEMORY", "2g"),
        "spark.pyspark.python": python,
        "spark.pyspark.driver.python": python,
        "spark.executorEnv.PYTHONPATH": os.pathsep.join(sys.path),
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={state}",
    }


def build_session(master: str | None = None, *, register: bool = True, config: dict[str, str] | None = None):
    """Create (or return) the process's Spark session with the City Brain functions and lake views.

    ``config``: settings added to (or overriding) :func:`session_config`, e.g. static SQL settings that
    must be known when the session is created (the Thrift Server's single shared session)."""
    check_java()
    from pyspark.sql import SparkSession

    spark_dir().mkdir(parents=True, exist_ok=True)
    builder = SparkSession.builder
    for key, value in {**session_config(master), **(config or {})}.items():
        builder = builder.config(key, value)
    spark = builder.enableHiveSupport().getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("CITYBRAIN_SPARK_LOG_LEVEL", "ERROR"))
    if register:
        from citybrain.scale import spark_functions, spark_sources

        spark_functions.register(spark)
        spark_sources.register(spark.sql, settings.lake_dir())
    return spark
