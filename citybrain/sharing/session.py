"""One identity everywhere: ``citybrain query``, ``citybrain trace --key``, pandas and the ``citybrain://``
SQLAlchemy URL read the pool as a sharing token's account, within its grants — or as the local operator.

``connect(token=...)`` gives a ``GrantSession``: every statement re-checks the token (unknown, tampered,
revoked or expired: refused) and the account's active grants (only those of its application when the token
is bound to one), then goes through ``enforce`` and ``Reader`` — the same enforcement and audit as the HTTP
API. ``connect(local_operator=True)`` gives the access layer's operator session over every published tier,
audited as ``operator:<OS login>``. There is no third way: ``--user``, ``CITYBRAIN_USER`` and
``CITYBRAIN_GRANTS`` are refused (``citybrain.access.identity``).

Importing this module registers the ``citybrain`` SQLAlchemy dialect (``sqlalchemy_dialect``), as the
package's entry point does once installed.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
from sqlalchemy.dialects import registry

from citybrain import settings
from citybrain.access import audit
from citybrain.access.audit_query import query_audit_log
from citybrain.access.identity import REPLACEMENT, AccessDenied, operator_identity, refuse_retired, token_from
from citybrain.access.query import Session, export_path, write_export
from citybrain.access.query import connect as operator_session
from citybrain.access.sql_guard import QueryRejected
from citybrain.sharing.config import Limits, load_config
from citybrain.sharing.enforce import EnforcedQuery, enforce
from citybrain.sharing.grants import Grant, active_grants
from citybrain.sharing.reader import Reader, audit_read, grants_for_refusal
from citybrain.sharing.store import Store, open_store
from citybrain.sharing.tokens import TokenInvalid, TokenOwner, resolve_token

registry.register("citybrain", "citybrain.sharing.sqlalchemy_dialect", "CityBrainDialect")

AUDITOR_ROLE = "auditor"


@functools.lru_cache(maxsize=8)
def _store_for(url: str) -> Store:
    return open_store(url)


def configured_store() -> Store:
    """The configured sharing database, one engine per URL for the process: a BI tool that checks out a
    ``citybrain://`` connection per query must not leave an engine (and its pool) behind each time."""
    return _store_for(settings.sharing_db_url())


class GrantSession:
    """A token holder's reads. Nothing is cached between statements: a token revoked or a grant ended
    while the session is open stops the next statement."""

    def __init__(
        self,
        store: Store,
        secret: str,
        via: str = "python",
        directory: Path | None = None,
        limits: Limits | None = None,
    ):
        self.store = store
        self.secret = secret
        self.via = via
        self.directory = directory
        self.limits = limits or load_config().limits
        self.owner, _grants = self.authorise()

    @property
    def user(self) -> str:
        return self.owner.account.name

    def authorise(self) -> tuple[TokenOwner, list[Grant]]:
        """The token's owner and active grants now; a bad token or no grant is audited and refused."""
        try:
            owner = resolve_token(self.store, self.secret)
        except TokenInvalid:
            audit.append("connect", outcome="denied", user=None, via=self.via, detail="invalid token")
            raise
        grants = active_grants(self.store, owner.account.id, owner.application_id)
        if not grants:
            message = (
                f"{owner.account.name} has no active grant: apply for a resource (citybrain sharing apply)"
            )
            audit.append("connect", outcome="denied", user=owner.account.name, via=self.via, detail=message)
            raise AccessDenied(message)
        return owner, grants

    def query(self, sql: str) -> pa.Table:
        """One query within the grants (at most ``max_result_rows`` rows: more is refused, not cut)."""
        return self._read(sql, "query", self.limits.max_result_rows)

    def df(self, sql: str):
        return self.query(sql).to_pandas()

    def export(self, sql: str, path: Path) -> int:
        """Write the result to ``path`` (.csv or .parquet), at most ``max_export_rows`` rows."""
        path = export_path(path)
        return write_export(
            self._read(sql, "export", self.limits.max_export_rows, target=str(path.resolve())), path
        )

    def enforce(self, sql: str, grants: Sequence[Grant], catalog_suffix: str) -> EnforcedQuery:
        """``enforce`` with the refusal audited under the grants the query named (for a held connection)."""
        by_table = {g.table: g for g in grants}
        try:
            return enforce(sql, by_table, catalog_suffix)
        except QueryRejected as error:
            self.record("query", "rejected", sql, grants_for_refusal(sql, by_table), detail=str(error))
            raise

    def record(self, action, outcome, sql, grants, **details) -> None:
        audit_read(self.user, self.via, action, outcome, sql, grants, **details)

    def _read(self, sql: str, action: str, max_rows: int, target: str | None = None) -> pa.Table:
        _owner, grants = self.authorise()
        reader = Reader(self.user, via=self.via, directory=self.directory)
        return reader.query(sql, grants, max_rows, action=action, target=target).table

    def close(self) -> None:
        pass  # every read opened and closed its own DuckDB session

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def connect(
    token: str | None = None,
    *,
    local_operator: bool = False,
    tiers: Sequence[str] | None = None,
    via: str = "python",
    store: Store | None = None,
    directory: Path | None = None,
    user: str | None = None,
) -> GrantSession | Session:
    """A session as the holder of ``token`` (else ``$CITYBRAIN_SHARING_TOKEN``), or as the local operator.

    ``tiers`` narrows the operator's session; a token reads what its grants name and nothing else."""
    refuse_retired(user)
    secret = None if local_operator else token_from(token)
    if local_operator and token:
        raise AccessDenied("give a token or --local-operator, not both")
    if local_operator:
        return operator_session(local_operator=True, tiers=tiers, directory=directory, via=via)
    if not secret:
        audit.append("connect", outcome="denied", user=None, via=via, detail="no identity given")
        raise AccessDenied(f"who is reading? {REPLACEMENT}")
    if tiers:
        raise AccessDenied("--tier is for the local operator: a token reads the tables its grants name")
    return GrantSession(store or configured_store(), secret, via=via, directory=directory)


def read_audit_log(
    sql: str,
    token: str | None = None,
    *,
    local_operator: bool = False,
    via: str = "cli",
    store: Store | None = None,
    user: str | None = None,
) -> pa.Table:
    """SQL over the audit log, for an account with the auditor role (by its token) or the local operator;
    anyone else is refused, and the refusal is itself audited."""
    refuse_retired(user)
    if local_operator:
        if token:
            raise AccessDenied("give a token or --local-operator, not both")
        return query_audit_log(sql, reader=operator_identity(), via=via)
    secret = token_from(token)
    if not secret:
        audit.append("audit_query", outcome="denied", user=None, via=via, sql=sql, detail="no identity")
        raise AccessDenied(f"who is asking? {REPLACEMENT}")
    try:
        owner = resolve_token(store or configured_store(), secret)
    except TokenInvalid:
        audit.append("audit_query", outcome="denied", user=None, via=via, sql=sql, detail="invalid token")
        raise
    account = owner.account
    if account.role != AUDITOR_ROLE:
        message = f"{account.name} ({account.role}) may not read the audit log: only the auditor role may"
        audit.append("audit_query", outcome="denied", user=account.name, via=via, sql=sql, detail=message)
        raise AccessDenied(message)
    return query_audit_log(sql, reader=account.name, via=via)


def read_sql(sql: str, token: str | None = None, *, local_operator: bool = False):
    """pandas DataFrame of one enforced, audited query (rows counted in the audit record)."""
    with connect(token, local_operator=local_operator, via="pandas") as session:
        return session.df(sql)


def engine(token: str | None = None, *, local_operator: bool = False):
    """A SQLAlchemy engine reading as ``token``'s account (``citybrain://?token=…``) or as the local operator
    (``citybrain://?local_operator=true``). A URL ends up in logs and tracebacks: prefer leaving the token
    out of it and setting ``$CITYBRAIN_SHARING_TOKEN``."""
    import sqlalchemy
    from sqlalchemy.engine import URL

    query = {"local_operator": "true"} if local_operator else ({"token": token} if token else {})
    return sqlalchemy.create_engine(URL.create("citybrain", query=query))
