"""Dagster resources: where the warehouse and landing zone are, and how to reach department systems.

Values left unset are resolved when a run needs them (``CITYBRAIN_HOME`` and friends, or the
connection's environment variable), never at import time, so one code location serves any lake.
"""

from __future__ import annotations

import os
from pathlib import Path

import requests
from dagster import ConfigurableResource

from citybrain import settings
from citybrain.catalog import connection_url
from citybrain.ingest.http_feed import make_session
from citybrain.warehouse import Warehouse


class WarehouseResource(ConfigurableResource):
    """The DuckDB warehouse: its file (default ``$CITYBRAIN_WAREHOUSE``, else
    ``$CITYBRAIN_HOME/warehouse.duckdb``) and the limits every connection takes (defaults
    ``$CITYBRAIN_DUCKDB_MEMORY_LIMIT``, ``$CITYBRAIN_DUCKDB_TEMP_DIR``). Unset fields are read from the
    environment when a run needs them, never at import, so one code location serves any lake.

    Assets connect through ``connect`` (or hold ``lock`` around work that hands the file to dbt); the
    writer lock and the settings live in ``citybrain/warehouse.py``."""

    path: str | None = None
    memory_limit: str | None = None
    temp_directory: str | None = None

    def warehouse(self) -> Warehouse:
        from_env = Warehouse.from_settings(Path(self.path) if self.path else None)
        return Warehouse(
            path=from_env.path,
            memory_limit=self.memory_limit or from_env.memory_limit,
            temp_directory=Path(self.temp_directory).resolve()
            if self.temp_directory
            else from_env.temp_directory,
        )

    def resolved_path(self) -> Path:
        return self.warehouse().path

    def connect(self, read_only: bool = False):
        """A connection under the writer lock, closed on exit (``citybrain.warehouse.Warehouse.connect``)."""
        return self.warehouse().connect(read_only=read_only)

    def lock(self):
        return self.warehouse().lock()


class PublicationResource(ConfigurableResource):
    """Where the audited pool is published for analysts, and how many versions are kept.

    Defaults: ``$CITYBRAIN_POOL_DIR`` (else ``$CITYBRAIN_HOME/pool``) and ``$CITYBRAIN_POOL_KEEP`` (else 7)."""

    directory: str | None = None
    keep_versions: int | None = None

    def resolved_directory(self) -> Path:
        from citybrain.publication import pool_dir

        return Path(self.directory).resolve() if self.directory else pool_dir()

    def resolved_keep(self) -> int:
        from citybrain.publication import DEFAULT_KEEP

        return self.keep_versions or int(os.environ.get("CITYBRAIN_POOL_KEEP") or DEFAULT_KEEP)


class LandingZoneResource(ConfigurableResource):
    """The directory departments and operators deliver files into (default ``$CITYBRAIN_HOME/landing``)."""

    path: str | None = None

    def resolved_path(self) -> Path:
        return Path(self.path).resolve() if self.path else settings.landing_dir()


def _resolve_url(url: str | None, url_env: str, default: str | None, what: str) -> str:
    resolved = url or connection_url(url_env, default)
    if not resolved:
        raise RuntimeError(f"{what}: no URL; set {url_env}")
    return resolved


class SqlSourceResource(ConfigurableResource):
    """A department database reached through SQLAlchemy; the URL comes from ``url_env`` at run time."""

    url_env: str
    default_url: str | None = None
    url: str | None = None

    def resolved_url(self) -> str:
        return _resolve_url(self.url, self.url_env, self.default_url, "database connection")


class HttpSourceResource(ConfigurableResource):
    """A department HTTP API; transient failures are retried with exponential backoff."""

    url_env: str
    default_url: str | None = None
    url: str | None = None
    retries: int = 5
    backoff_factor: float = 0.5
    timeout_seconds: float | None = None

    def resolved_url(self) -> str:
        return _resolve_url(self.url, self.url_env, self.default_url, "API connection")

    def session(self) -> requests.Session:
        return make_session(self.retries, self.backoff_factor)
