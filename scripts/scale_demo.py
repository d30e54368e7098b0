"""`make scale-demo`: the demo city's nightly job on a real local Spark cluster, Dagster on PostgreSQL,
and a parity report against DuckDB (docs/SCALE.md).

Steps, each stopped cleanly on failure:
1. preflight: Java 17 (`scripts/ensure_java.sh` installs Debian's package when absent), PostgreSQL;
2. the demo city's deliveries into ``$SCALE_HOME`` (default ``data/scale``);
3. a throwaway PostgreSQL database for Dagster's run, event and schedule storage
   (orchestration/instance/dagster.postgres.yaml as the instance);
4. a Spark standalone master, worker(s) and the Thrift Server bound to 127.0.0.1, started from the
   pyspark wheel (citybrain/scale/cluster.py);
5. the nightly job over every demo day with dbt on the ``spark_thrift`` target (ingestion writes the
   Parquet lake; dbt builds on the cluster; the quality gate and the tiered publication follow);
6. the parity report: the pool built by DuckDB from the same Parquet files against the cluster's
   tables (``$SCALE_HOME/parity.json`` and ``parity.md``);
7. everything started is stopped by process id and the database dropped, also when a step fails.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from citybrain.scale import cluster, parity, preflight  # noqa: E402
from demo_city.hotline_api import served_env  # noqa: E402

BIN = Path(sys.executable).parent


def _run(command: list[str], env: dict[str, str]) -> float:
    started = time.monotonic()
    print("$", " ".join(command), flush=True)
    subprocess.run(command, env=env, check=True, cwd=REPO)
    return time.monotonic() - started


def _pg_admin_url() -> str:
    host, port = os.environ.get("DAGSTER_PG_HOST", "127.0.0.1"), os.environ.get("DAGSTER_PG_PORT", "5432")
    user = os.environ.get("DAGSTER_PG_USER", "postgres")
    password = os.environ.get("DAGSTER_PG_PASSWORD", "")
    auth = f"{user}:{password}@" if password else f"{user}@"
    return f"postgresql+psycopg2://{auth}{host}:{port}/postgres"


def _pg(statement: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(
        _pg_admin_url(), isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}
    )
    try:
        with engine.connect() as con:
            con.execute(sa.text(statement))
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", default=str(REPO / "data" / "scale"), help="lake of the scale demo")
    parser.add_argument("--residents", type=int, default=20000)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--counties", nargs="+", help="county codes (default: the demo's)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--worker-cores", type=int, default=2)
    parser.add_argument("--worker-memory", default="2g")
    args = parser.parse_args(argv)

    home = Path(args.home).resolve()
    marker = home / ".citybrain-scale-demo"  # only a directory this script made is ever wiped
    if home.exists() and any(home.iterdir()):
        if not marker.exists():
            parser.error(f"{home} exists and was not made by the scale demo: choose another --home")
        shutil.rmtree(home)
    home.mkdir(parents=True, exist_ok=True)
    marker.touch()
    end = date.today() - timedelta(days=1)
    start = end - timedelta(days=args.days - 1)
    database = f"citybrain_scale_{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "CITYBRAIN_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster_home"),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "CITYBRAIN_DBT_TARGET": "spark_thrift",
        "DAGSTER_PG_HOST": os.environ.get("DAGSTER_PG_HOST", "127.0.0.1"),
        "DAGSTER_PG_PORT": os.environ.get("DAGSTER_PG_PORT", "5432"),
        "DAGSTER_PG_USER": os.environ.get("DAGSTER_PG_USER", "postgres"),
        "DAGSTER_PG_PASSWORD": os.environ.get("DAGSTER_PG_PASSWORD", ""),
        "DAGSTER_PG_DB": database,
    }
    os.environ.update({k: env[k] for k in ("CITYBRAIN_HOME", "SPARK_LOCAL_IP")})

    preflight.require_java()
    preflight.require_postgres(_pg_admin_url())
    timings: dict[str, float] = {}
    generate = [
        str(BIN / "citybrain"),
        "demo-data",
        "--residents",
        str(args.residents),
        "--days",
        str(args.days),
    ]
    generate += ["--end-date", end.isoformat()] + (["--counties", *args.counties] if args.counties else [])
    timings["generate_city"] = _run(generate, env)

    _pg(f'CREATE DATABASE "{database}"')
    try:
        dagster_home = home / "dagster_home"
        dagster_home.mkdir(exist_ok=True)
        shutil.copyfile(
            REPO / "orchestration" / "instance" / "dagster.postgres.yaml", dagster_home / "dagster.yaml"
        )
        with cluster.running_cluster(
            workers=args.workers,
            worker_cores=args.worker_cores,
            worker_memory=args.worker_memory,
            master_port=cluster.free_port(),  # free ports: a developer's 8080 or 10000 may be taken
            master_webui_port=cluster.free_port(),
            thrift_port=cluster.free_port(),
        ) as running:
            env["CITYBRAIN_SPARK_THRIFT_PORT"] = str(running.thrift_port)
            with served_env(home / "demo" / "hotline_store") as hotline:  # `citybrain run` serves no demo API
                timings["nightly_on_spark"] = _run(
                    [str(BIN / "citybrain"), "run", "--start", start.isoformat(), "--end", end.isoformat()],
                    {**env, **hotline},
                )
            report = parity.run_parity(
                home / "lake",
                home / "parity",
                spark_target="spark_thrift",
                spark_warehouse=home / "spark" / "warehouse",
                extra={
                    "timings_seconds": {k: round(v, 1) for k, v in timings.items()},
                    "dagster_pg_db": database,
                },
            )
    finally:
        _pg(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    for name in ("parity.json", "parity.md"):
        shutil.copyfile(home / "parity" / name, home / name)
    print((home / "parity.md").read_text(encoding="utf-8"))
    print(
        json.dumps(
            {"timings_seconds": report.get("timings_seconds"), "build_seconds": report["build_seconds"]}
        )
    )
    print(f"parity: {'EQUAL' if report['all_equal'] else 'DIFFERENT'} — {home / 'parity.json'}")
    return 0 if report["all_equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
