"""Fast, clear failures before a run starts: Java for Spark, a reachable Thrift Server, a reachable PostgreSQL.

Each check raises :class:`PreflightError` with a message that names what is missing and how to fix it,
within a few seconds, instead of a stack trace minutes into a run.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

THRIFT_HOST_ENV = "CITYBRAIN_SPARK_THRIFT_HOST"
THRIFT_PORT_ENV = "CITYBRAIN_SPARK_THRIFT_PORT"
DEFAULT_THRIFT_HOST = "127.0.0.1"
DEFAULT_THRIFT_PORT = 10000
PG_VARIABLES = (
    "DAGSTER_PG_HOST",
    "DAGSTER_PG_PORT",
    "DAGSTER_PG_USER",
    "DAGSTER_PG_PASSWORD",
    "DAGSTER_PG_DB",
)


class PreflightError(RuntimeError):
    """A precondition of a run is not met; the message says which and what to do."""


def require_java() -> str:
    """The java executable Spark will use (``spark_session.check_java``), else PreflightError."""
    from citybrain.scale.spark_session import check_java

    try:
        return check_java()
    except RuntimeError as error:
        raise PreflightError(str(error)) from None


def thrift_address() -> tuple[str, int]:
    """The Thrift Server dbt's ``spark_thrift`` target connects to: $CITYBRAIN_SPARK_THRIFT_HOST/PORT."""
    host = os.environ.get(THRIFT_HOST_ENV) or DEFAULT_THRIFT_HOST
    port = int(os.environ.get(THRIFT_PORT_ENV) or DEFAULT_THRIFT_PORT)
    return host, port


def require_thrift(host: str | None = None, port: int | None = None, timeout: float = 3.0) -> None:
    """A TCP connection to the Spark Thrift Server succeeds within ``timeout`` seconds."""
    default_host, default_port = thrift_address()
    host = host or default_host
    port = int(port or default_port)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return
    except OSError as error:
        reason = "timed out" if isinstance(error, TimeoutError) else (error.strerror or str(error))
        raise PreflightError(
            f"no Spark Thrift Server at {host}:{port} ({reason}). Start the cluster with "
            f"`python -m citybrain.scale.cluster start --thrift-port {port}`, or point "
            f"{THRIFT_HOST_ENV} / {THRIFT_PORT_ENV} at a running Thrift Server."
        ) from None


def _server_of(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - an unparsable URL is reported as given, without its password
        return url.rsplit("@", 1)[-1]
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}" + (
        f"/{parsed.database}" if parsed.database else ""
    )


def require_postgres(url: str, timeout: int = 3) -> None:
    """A PostgreSQL connection with ``url`` (SQLAlchemy form) opens and answers ``select 1``."""
    import sqlalchemy

    server = _server_of(url)
    try:
        engine = sqlalchemy.create_engine(url, connect_args={"connect_timeout": int(max(1, timeout))})
    except Exception as error:  # noqa: BLE001 - a bad URL or a missing driver, reported as such
        raise PreflightError(f"cannot use the PostgreSQL URL for {server}: {error}") from None
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("select 1"))
    except Exception as error:  # noqa: BLE001 - any failure to connect is the one message below
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()
        raise PreflightError(
            f"cannot connect to PostgreSQL at {server}: {reason[0] if reason else type(error).__name__}. "
            f"Start the server, or set {', '.join(PG_VARIABLES)} to a reachable server and database."
        ) from None
    finally:
        engine.dispose()


def postgres_url_from_env() -> str:
    """The Dagster instance's database as a SQLAlchemy URL, from the DAGSTER_PG_* variables."""
    from sqlalchemy.engine import URL

    return URL.create(
        "postgresql+psycopg2",
        username=os.environ.get("DAGSTER_PG_USER") or None,
        password=os.environ.get("DAGSTER_PG_PASSWORD") or None,
        host=os.environ.get("DAGSTER_PG_HOST") or "localhost",
        port=int(os.environ.get("DAGSTER_PG_PORT") or 5432),
        database=os.environ.get("DAGSTER_PG_DB") or None,
    ).render_as_string(hide_password=False)


def uses_postgres_instance(dagster_home: Path) -> bool:
    """Whether the Dagster instance in ``dagster_home`` keeps its storage in PostgreSQL."""
    config = dagster_home / "dagster.yaml"
    if not config.exists():
        return False
    import yaml

    loaded = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    storage = loaded.get("storage") or {}
    return "postgres" in storage or any(
        "postgres" in str((loaded.get(key) or {}).get("module", ""))
        for key in ("run_storage", "event_log_storage", "schedule_storage")
    )


def check_run_configuration(dagster_home: Path) -> None:
    """Before a run starts anything: the engine and the instance it is configured for are reachable.

    A Spark target needs Java (and, for ``spark_thrift``, the Thrift Server); a PostgreSQL instance needs its
    server. Each missing piece raises :class:`PreflightError` naming it and how to fix it, so nothing is
    ingested, built or published on a configuration that cannot finish."""
    from citybrain import settings

    target = settings.dbt_target()
    if target not in {"duckdb", "spark", "spark_thrift"}:
        raise PreflightError(
            f"unknown dbt target {target!r} in {settings.DBT_TARGET_ENV}: use duckdb, spark or spark_thrift "
            "(dbt_project/profiles.yml, docs/SCALE.md)"
        )
    if target.startswith("spark"):
        require_java()
    if target == "spark_thrift":
        require_thrift()
    if uses_postgres_instance(dagster_home):
        require_postgres(postgres_url_from_env())
