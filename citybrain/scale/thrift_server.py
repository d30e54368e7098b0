"""The Spark Thrift Server of the cluster, with the City Brain functions (``cb_*``) and the lake's views.

The stock ``start-thriftserver.sh`` cannot offer Python UDFs: they live in a Python driver. So this module
is the driver: it builds the lake's session (``spark_session.build_session``: the ``cb_*`` functions as
temporary functions, the lake's Parquet directories as views) against the cluster's master, then starts
``HiveThriftServer2.startWithContext`` inside the same JVM through py4j. With
``spark.sql.hive.thriftServer.singleSession=true`` every JDBC/Thrift connection runs in that one session
and so sees its temporary functions; without it each connection gets ``newSession()``, which starts from
the built-in functions only. The Python UDFs run on the cluster's executors with this interpreter
(``spark.pyspark.python``).

    python -m citybrain.scale.thrift_server --master spark://127.0.0.1:7077 --port 10000

Blocks until SIGTERM or SIGINT, then stops the Thrift Server and the session. Normally started and
stopped by ``citybrain.scale.cluster``, which sends its output to ``$CITYBRAIN_HOME/spark/logs``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time

SINGLE_SESSION = "spark.sql.hive.thriftServer.singleSession"


def thrift_config(host: str, port: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Session settings of the Thrift driver: one shared session, bound to ``host:port``."""
    return {
        SINGLE_SESSION: "true",
        "spark.driver.host": host,
        "spark.driver.bindAddress": host,
        # Read by HiveThriftServer2 from the session's Hadoop configuration.
        "spark.hadoop.hive.server2.thrift.bind.host": host,
        "spark.hadoop.hive.server2.thrift.port": str(port),
        "spark.hadoop.hive.server2.transport.mode": "binary",
        "spark.ui.showConsoleProgress": "false",
        **(extra or {}),
    }


def start_thrift_server(spark, host: str, port: int):
    """Start HiveThriftServer2 in the session's JVM, serving ``spark`` (its functions and views)."""
    spark.conf.set("hive.server2.thrift.bind.host", host)
    spark.conf.set("hive.server2.thrift.port", str(port))
    jvm = spark.sparkContext._jvm
    server_class = jvm.org.apache.spark.sql.hive.thriftserver.HiveThriftServer2
    # Spark 4.x: startWithContext(SQLContext); the session's SQLContext carries the registered functions.
    return server_class.startWithContext(spark._jsparkSession.sqlContext())


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m citybrain.scale.thrift_server", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--master", required=True, help="the cluster's master URL, e.g. spark://127.0.0.1:7077"
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address the Thrift Server binds (default 127.0.0.1)"
    )
    parser.add_argument("--port", type=int, default=10000, help="Thrift port (default 10000)")
    parser.add_argument(
        "--conf", action="append", default=[], metavar="KEY=VALUE", help="an extra Spark setting (repeatable)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    extra = {}
    for item in args.conf:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--conf needs KEY=VALUE, got {item!r}")
        extra[key] = value

    stopping = threading.Event()

    def _on_signal(signum, _frame):
        print(f"thrift_server: signal {signum}, stopping", flush=True)
        stopping.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    from citybrain.scale.spark_session import build_session

    began = time.monotonic()
    spark = build_session(args.master, config=thrift_config(args.host, args.port, extra))
    if spark.conf.get(SINGLE_SESSION) != "true":  # set by an earlier session in this process: refuse
        print(f"thrift_server: {SINGLE_SESSION} is not true in this session", file=sys.stderr, flush=True)
        return 2
    server = start_thrift_server(spark, args.host, args.port)
    print(
        f"thrift_server: ready on {args.host}:{args.port} (master {args.master}, pid {os.getpid()}, "
        f"{time.monotonic() - began:.1f}s)",
        flush=True,
    )
    status = 0
    jsc = spark.sparkContext._jsc.sc()
    while not stopping.wait(2.0):
        try:
            if jsc.isStopped():
                print("thrift_server: the SparkContext stopped; exiting", file=sys.stderr, flush=True)
                status = 1
                break
        except Exception as error:  # noqa: BLE001 - the JVM is gone: nothing left to serve
            print(f"thrift_server: lost the JVM ({error}); exiting", file=sys.stderr, flush=True)
            return 1
    for step in (server.stop, spark.stop):
        try:
            step()
        except Exception as error:  # noqa: BLE001 - the JVM may already be shutting down on the same signal
            print(f"thrift_server: while stopping: {error}", file=sys.stderr, flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
