"""A dbt build on Spark (docs/SCALE.md): Spark reads the sources from the Parquet lake, synced from the
warehouse before the build; the quality gate and publication read the pool from the DuckDB warehouse, so
the pool tables Spark built are brought back into it afterwards."""

from pathlib import Path

from assets.dbt.outputs import built_unique_ids
from citybrain import settings
from citybrain.governance import classification
from citybrain.settings import duckdb_config


def sync_parquet_lake(warehouse_path: Path) -> None:
    import duckdb

    from citybrain.lake import parquet_lake

    con = duckdb.connect(str(warehouse_path), config=duckdb_config())
    try:
        parquet_lake.sync(con, settings.lake_dir())
    finally:
        con.close()


def import_spark_pool(warehouse_path: Path, manifest: dict, events: list) -> dict[str, int]:
    """Copy the pool tables this dbt step built on Spark into the DuckDB warehouse (citybrain/scale/spark_pool.py);
    rows per unique id. Only the pool: it is all the quality gate, publication and resource catalog read
    (staging, intermediate and snapshots stay in Spark)."""
    import duckdb

    from citybrain.scale import spark_pool

    built = built_unique_ids(events)
    pool = [t for t in spark_pool.built_tables(manifest, built) if t["schema"] == classification.POOL_SCHEMA]
    con = duckdb.connect(str(warehouse_path), config=duckdb_config())
    try:
        return spark_pool.import_tables(con, pool)
    finally:
        con.close()
