"""A dbt build on Spark (docs/SCALE.md): Spark reads the sources from the Parquet lake, synced from the
warehouse before the build; the quality gate and publication read the pool from the DuckDB warehouse, so
the pool tables Spark built are brought back into it afterwards."""

from assets.dbt.outputs import built_unique_ids
from citybrain import settings
from citybrain.vocabulary import POOL_SCHEMA
from citybrain.warehouse import Warehouse


def sync_parquet_lake(warehouse: Warehouse) -> None:
    """The caller holds the warehouse lock (the dbt step)."""
    from citybrain.lake import parquet_lake

    with warehouse.connect(locked=False) as con:
        parquet_lake.sync(con, settings.lake_dir())


def import_spark_pool(warehouse: Warehouse, manifest: dict, events: list) -> dict[str, int]:
    """Copy the pool tables this dbt step built on Spark into the DuckDB warehouse (citybrain/scale/spark_pool.py);
    rows per unique id. Only the pool: it is all the quality gate, publication and resource catalog read
    (staging, intermediate and snapshots stay in Spark)."""
    from citybrain.scale import spark_pool

    built = built_unique_ids(events)
    pool = [t for t in spark_pool.built_tables(manifest, built) if t["schema"] == POOL_SCHEMA]
    with warehouse.connect(locked=False) as con:  # the caller holds the lock
        return spark_pool.import_tables(con, pool)
