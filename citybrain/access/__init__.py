"""Analyst access to the published pool: grants per tier, a SQL guard, a locked-down engine, an audit log.

``connect(user=...)`` opens a read-only session over the tiers the user is granted; ``read_sql`` gives
pandas a DataFrame through it; ``engine(user=...)`` (or the URL ``citybrain:///?user=…``) gives SQLAlchemy
the same. The CLI (`citybrain query`, `citybrain audit …`) uses the same functions.
"""

from __future__ import annotations

from sqlalchemy.dialects import registry

from citybrain.access.grants import AccessDenied, GrantsError, load_grants
from citybrain.access.query import Session, TierNotPublished, connect
from citybrain.access.sql_guard import QueryRejected

registry.register("citybrain", "citybrain.access.sqlalchemy_dialect", "CityBrainDialect")

__all__ = [
    "AccessDenied",
    "GrantsError",
    "QueryRejected",
    "Session",
    "TierNotPublished",
    "connect",
    "engine",
    "load_grants",
    "read_sql",
]


def engine(user: str | None = None, tiers: list[str] | None = None):
    """A SQLAlchemy engine over the user's granted tiers (``citybrain:///?user=…&tiers=…``)."""
    import sqlalchemy
    from sqlalchemy.engine import URL

    query = {k: v for k, v in {"user": user, "tiers": ",".join(tiers) if tiers else None}.items() if v}
    return sqlalchemy.create_engine(URL.create("citybrain", query=query))


def read_sql(sql: str, user: str | None = None, tiers: list[str] | None = None):
    """pandas DataFrame of one guarded, audited query (rows counted in the audit record)."""
    with connect(user=user, tiers=tiers, via="pandas") as session:
        return session.df(sql)
