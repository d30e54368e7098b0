"""``citybrain://`` SQLAlchemy URLs: pandas and BI tools reach the published tiers with grants and audit.

``sqlalchemy.create_engine("citybrain:///?user=demo_analyst")`` (after ``import citybrain.access``, which
registers the dialect) is duckdb-engine's dialect on top of a ``citybrain.access`` session: the same
grants, the same locked-down engine, and a cursor that sends every statement through the SQL guard and the
audit log before DuckDB sees it. Rows are not counted here (the client fetches them after the audit record
is written); ``citybrain.access.read_sql`` counts them.
"""

from __future__ import annotations

from typing import Any

from duckdb_engine import ConnectionWrapper, CursorWrapper
from duckdb_engine import Dialect as DuckDBDialect
from sqlalchemy import pool

from citybrain.access.query import Session, connect


class GuardedCursor(CursorWrapper):
    def __init__(self, session: Session, wrapper: GuardedConnection):
        super().__init__(session.con, wrapper)
        self._session = session

    def execute(self, statement: str, parameters: Any = None, context: Any = None) -> None:
        checked = self._session.check(statement)
        tiers = self._session._tiers_of(checked)
        try:
            super().execute(statement, parameters, context)
        except Exception as error:
            self._session._audit(
                "query", "error", sql=statement, tables=checked.tables, tiers=tiers, detail=str(error)
            )
            raise
        self._session._audit("query", "ok", sql=statement, tables=checked.tables, tiers=tiers)

    def executemany(self, statement: str, parameters: Any = None, context: Any = None) -> None:
        self._session.check(statement)  # only SELECTs pass, and those are never executemany'd
        raise NotImplementedError("executemany: the published pool is read-only")


class GuardedConnection(ConnectionWrapper):
    def __init__(self, session: Session):
        super().__init__(session.con)
        self.session = session

    def cursor(self) -> GuardedCursor:
        return GuardedCursor(self.session, self)


class CityBrainDialect(DuckDBDialect):
    """duckdb-engine, connecting through ``citybrain.access.connect`` instead of ``duckdb.connect``."""

    supports_statement_cache = False

    def create_connect_args(self, url):
        query = dict(url.query)
        tiers = query.pop("tiers", None)
        user = url.username or query.pop("user", None)
        return (), {"user": user, "tiers": tiers.split(",") if tiers else None}

    def connect(self, *cargs: Any, **cparams: Any) -> GuardedConnection:
        return GuardedConnection(
            connect(user=cparams.get("user"), tiers=cparams.get("tiers"), via="sqlalchemy")
        )

    @classmethod
    def get_pool_class(cls, url):
        # A new session per checkout: a pooled session would keep reading the version it attached.
        return pool.NullPool
