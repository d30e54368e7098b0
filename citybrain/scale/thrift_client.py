"""Talking to a running Spark Thrift Server (the ``spark_thrift`` dbt target) from this machine."""

from __future__ import annotations

import os

from citybrain import settings


def connect():
    from pyhive import hive

    from citybrain.scale.preflight import thrift_address

    host, port = thrift_address()
    return hive.connect(host=host, port=port, username=os.environ.get("CITYBRAIN_SPARK_USER", "citybrain"))


def register_lake_views() -> int:
    """(Re)create the lake's source views on the server before dbt runs: a feed that first arrived after
    the server started gets its view too. The server's session already has the cb_* functions."""
    from citybrain.scale import spark_sources
    from citybrain.scale.preflight import require_thrift

    require_thrift()
    connection = connect()
    try:
        cursor = connection.cursor()
        return spark_sources.register(cursor.execute, settings.lake_dir())
    finally:
        connection.close()
