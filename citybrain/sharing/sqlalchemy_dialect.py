"""``citybrain://`` SQLAlchemy URLs: pandas and BI tools read the published pool as a token's account.

``sqlalchemy.create_engine("citybrain://?token=cbl_…")`` — or ``"citybrain://"`` with the token in
``$CITYBRAIN_SHARING_TOKEN``, which keeps it out of logged URLs, or ``"citybrain://:cbl_…@"`` (the password
slot, which SQLAlchemy masks when it shows the URL) — is duckdb-engine's dialect over a
locked-down in-memory DuckDB with the tier files of the account's grants attached READ_ONLY under
per-connection random catalog names (``reader.open_session``). Every statement first re-checks the token
and the active grants, then is rewritten by ``enforce`` (granted tables, columns and rows only) and audited
per grant — the HTTP API's enforcement, on a connection. ``citybrain://?local_operator=true`` is the local
operator's session over every published tier (``citybrain.access.query``), guarded by the SQL guard and
audited as ``operator:<OS login>``. A user name (``citybrain://alice@`` or ``?user=``) is refused.

Rows are not counted here (the client fetches them after the audit record is written), and the API's row
limits do not apply: ``citybrain.sharing.session.read_sql`` counts and limits them. A connection reads the
version it attached; the pool class is NullPool, so each checkout is a new connection on the live version.
"""

from __future__ import annotations

import secrets
from typing import Any

from duckdb_engine import ConnectionWrapper, CursorWrapper
from duckdb_engine import Dialect as DuckDBDialect
from sqlalchemy import pool

from citybrain.access.identity import AccessDenied
from citybrain.access.query import Session
from citybrain.sharing.reader import open_session
from citybrain.sharing.session import GrantSession, connect

TRUE = {"1", "true", "yes", "on"}


class OperatorCursor(CursorWrapper):
    def __init__(self, session: Session, wrapper: OperatorConnection):
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


class OperatorConnection(ConnectionWrapper):
    def __init__(self, session: Session):
        super().__init__(session.con)
        self.session = session

    def cursor(self) -> OperatorCursor:
        return OperatorCursor(self.session, self)


class TokenCursor(CursorWrapper):
    def __init__(self, wrapper: TokenConnection):
        super().__init__(wrapper.con, wrapper)
        self._wrapper = wrapper

    def execute(self, statement: str, parameters: Any = None, context: Any = None) -> None:
        session = self._wrapper.session
        _owner, grants = session.authorise()
        enforced = session.enforce(statement, grants, self._wrapper.suffix)
        unattached = {g.tier for g in enforced.grants} - self._wrapper.tiers
        if unattached:
            message = (
                f"a grant in the {', '.join(sorted(unattached))} tier began after this connection opened"
            )
            session.record("query", "rejected", statement, enforced.grants, detail=message)
            raise AccessDenied(message + ": connect again")
        try:
            super().execute(enforced.sql, parameters, context)
        except Exception as error:
            session.record("query", "error", statement, enforced.grants, detail=str(error))
            raise
        session.record("query", "ok", statement, enforced.grants, version=self._wrapper.version)

    def executemany(self, statement: str, parameters: Any = None, context: Any = None) -> None:
        session = self._wrapper.session
        session.enforce(statement, session.authorise()[1], self._wrapper.suffix)
        raise NotImplementedError("executemany: the published pool is read-only")


class TokenConnection(ConnectionWrapper):
    """The tiers of the grants active at connect time, attached under a random suffix nobody is told."""

    def __init__(self, session: GrantSession):
        _owner, grants = session.authorise()
        self.session = session
        self.suffix = secrets.token_hex(8)
        self.tiers = {g.tier for g in grants}
        self.con, self.version = open_session(sorted(self.tiers), session.directory, None, self.suffix)
        super().__init__(self.con)

    def cursor(self) -> TokenCursor:
        return TokenCursor(self)


class CityBrainDialect(DuckDBDialect):
    """duckdb-engine, connecting through a token's grants or the local operator instead of ``duckdb.connect``."""

    supports_statement_cache = False

    def create_connect_args(self, url):
        query = dict(url.query)
        user = url.username or query.pop("user", None)
        tiers = query.pop("tiers", None)
        return (), {
            "token": query.pop("token", None) or url.password,
            "local_operator": str(query.pop("local_operator", "")).lower() in TRUE,
            "tiers": tiers.split(",") if tiers else None,
            "user": user,
        }

    def connect(self, *cargs: Any, **cparams: Any):
        session = connect(
            cparams.get("token"),
            local_operator=cparams.get("local_operator", False),
            tiers=cparams.get("tiers"),
            via="sqlalchemy",
            user=cparams.get("user"),
        )
        if isinstance(session, GrantSession):
            return TokenConnection(session)
        return OperatorConnection(session)

    @classmethod
    def get_pool_class(cls, url):
        # A new session per checkout: a pooled session would keep reading the version it attached.
        return pool.NullPool
