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
from citybrain.ingest.http_feed import make_session


class WarehouseResource(ConfigurableResource):
    """The DuckDB warehouse file (default ``$CITYBRAIN_HOME/warehouse.duckdb``)."""

    path: str | None = None

    def resolved_path(self) -> Path:
        return Path(self.path).resolve() if self.path else settings.warehouse_path()


class LandingZoneResource(ConfigurableResource):
    """The directory departments and operators deliver files into (default ``$CITYBRAIN_HOME/landing``)."""

    path: str | None = None

    def resolved_path(self) -> Path:
        return Path(self.path).resolve() if self.path else settings.landing_dir()


def _resolve_url(url: str | None, url_env: str, default: str | None, what: str) -> str:
    resolved = (
        url
        or os.environ.get(url_env)
        or (default.format(landing=settings.landing_dir()) if default else None)
    )
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
