"""Is anything answering at the catalog's HTTP APIs? Asked before a run, so an operator reads why a feed
will fail (an unset URL, a service that is down) before the run rather than in a step's stack trace.

Only whether the host accepts a connection is asked: no request is sent, so a department's API sees no
traffic and needs no credentials for it. Whether its answers are right is the ingestion's job.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from citybrain.catalog import Catalog, connection_url

TIMEOUT_SECONDS = 3.0
DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Unreachable:
    connection: str
    url: str | None  # None: neither the environment variable nor the catalog names one
    url_env: str
    feeds: tuple[str, ...]
    reason: str

    def __str__(self) -> str:
        where = self.url or f"no URL (set {self.url_env})"
        return (
            f"{self.connection}: {where} unreachable ({self.reason}); feeds {', '.join(self.feeds)} will fail. "
            f"The URL is ${self.url_env}, else the catalog's default."
        )


def unreachable_http_connections(catalog: Catalog, timeout: float = TIMEOUT_SECONDS) -> list[Unreachable]:
    """The catalog's HTTP connections that some feed reads and that accept no TCP connection now."""
    feeds_by_connection: dict[str, list[str]] = {}
    for feed in catalog.feeds:
        name = getattr(feed.delivery, "connection", None)
        if name is not None and catalog.connections[name].kind == "http":
            feeds_by_connection.setdefault(name, []).append(feed.id)
    problems = []
    for name, feeds in sorted(feeds_by_connection.items()):
        conn = catalog.connections[name]
        url = connection_url(conn.url_env, conn.default)
        reason = _connect_problem(url, timeout) if url else "no URL configured"
        if reason:
            problems.append(Unreachable(name, url, conn.url_env, tuple(sorted(feeds)), reason))
    return problems


def _connect_problem(url: str, timeout: float) -> str | None:
    """Why nothing accepts a connection at ``url``'s host and port; None when something does."""
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return f"not an http(s) URL: {url!r}"
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError as error:
        return str(error)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return None
    except OSError as error:
        return error.strerror or str(error) or type(error).__name__
