"""The sharing service's tables, in one SQLAlchemy database: SQLite by default, PostgreSQL in production.

SQLAlchemy Core, not the ORM: the service reads and writes a handful of rows per request and the SQL it
issues should be obvious from the code. Times are naive UTC (``utcnow``) so SQLite and PostgreSQL store and
return the same values; dates of the statutory clocks are plain dates. ``schema`` puts the tables in a
PostgreSQL schema (the tests use one per test; a deployment may use ``sharing``).
"""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    update,
)

from citybrain import settings

ROLES = ("consumer", "provider_approver", "data_office", "auditor")
DELIVERIES = ("api", "table")


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def record_from_row(cls, row):
    """The frozen dataclass ``cls`` (an application or a grant) filled from its table's ``row``.

    One mapping for both because they store a grant's scope the same way: the table in ``table_name``
    (the record says ``table``), ``columns`` and ``row_filter_values`` as JSON lists (the record holds
    tuples of text, or None for no row filter). Every other field has its column's name."""
    values = {f.name: getattr(row, "table_name" if f.name == "table" else f.name) for f in fields(cls)}
    values["columns"] = tuple(values["columns"])
    filters = values["row_filter_values"]
    values["row_filter_values"] = tuple(str(v) for v in filters) if filters is not None else None
    return cls(**values)


class Store:
    """An engine and the tables bound to it. ``Store()`` opens the configured database."""

    def __init__(self, url: str | None = None, schema: str | None = None, engine: Engine | None = None):
        self.url = url or settings.sharing_db_url()
        self.engine = engine or _engine(self.url)
        self.schema = schema
        self.metadata = MetaData(schema=schema)
        m = self.metadata
        self.accounts = Table(
            "sharing_accounts", m,
            Column("id", Integer, primary_key=True),
            Column("name", String(100), nullable=False, unique=True),
            Column("department", String(100), nullable=False),
            Column("role", String(30), nullable=False),
            Column("password_hash", String(200), nullable=False),
            Column("failed_logins", Integer, nullable=False, default=0),
            Column("locked_until", DateTime),
            Column("disabled", Boolean, nullable=False, default=False),
            Column("created_at", DateTime, nullable=False, default=utcnow),
        )  # fmt: skip
        self.tokens = Table(
            "sharing_tokens", m,
            Column("id", Integer, primary_key=True),
            Column("account_id", Integer, ForeignKey(self._fk("sharing_accounts.id")), nullable=False),
            Column("label", String(200), nullable=False),  # the client application it was issued for
            # Optional: the token serves only the grants of this sharing application.
            Column("application_id", Integer, ForeignKey(self._fk("sharing_applications.id"))),
            Column("prefix", String(20), nullable=False),  # shown in listings to tell tokens apart
            Column("secret_hash", String(64), nullable=False, unique=True),
            Column("created_at", DateTime, nullable=False, default=utcnow),
            Column("expires_at", DateTime),
            Column("revoked_at", DateTime),
            Column("last_used_at", DateTime),
        )  # fmt: skip
        self.applications = Table(
            "sharing_applications", m,
            Column("id", Integer, primary_key=True),
            Column("consumer_id", Integer, ForeignKey(self._fk("sharing_accounts.id")), nullable=False),
            Column("resource_code", String(100), nullable=False),
            Column("table_name", String(200), nullable=False),  # pool.<table>
            Column("tier", String(20), nullable=False),
            Column("provider_department", String(100), nullable=False),
            Column("purpose", Text, nullable=False),
            Column("columns", JSON, nullable=False),
            Column("row_filter_column", String(100)),
            Column("row_filter_values", JSON),
            Column("period_end", Date, nullable=False),
            Column("delivery", String(10), nullable=False),
            Column("on_platform", Boolean, nullable=False, default=True),
            # submitted → (conditional: forwarded) → approved | narrowed | refused; escalated → data office
            Column("status", String(20), nullable=False),
            Column("submitted_at", DateTime, nullable=False),
            Column("stage_started_on", Date, nullable=False),  # when the running clock started
            Column("due_on", Date),  # the running clock's deadline (None once decided)
            Column("decided_at", DateTime),
            Column("decided_by", Integer, ForeignKey(self._fk("sharing_accounts.id"))),
            Column("reason", Text),
            Column("grant_id", Integer),
        )  # fmt: skip
        self.grants = Table(
            "sharing_grants", m,
            Column("id", Integer, primary_key=True),
            Column("application_id", Integer, ForeignKey(self._fk("sharing_applications.id"))),
            Column("account_id", Integer, ForeignKey(self._fk("sharing_accounts.id")), nullable=False),
            Column("table_name", String(200), nullable=False),
            Column("tier", String(20), nullable=False),
            Column("columns", JSON, nullable=False),
            Column("row_filter_column", String(100)),
            Column("row_filter_values", JSON),
            Column("delivery", String(10), nullable=False),
            Column("starts_at", DateTime, nullable=False),
            Column("ends_at", DateTime, nullable=False),
            Column("revoked_at", DateTime),
            Column("granted_by", Integer, ForeignKey(self._fk("sharing_accounts.id"))),
        )  # fmt: skip

        # Table delivery (citybrain/sharing/delivery.py): where a grant's slice goes, and what went there.
        self.delivery_targets = Table(
            "sharing_delivery_targets", m,
            Column("id", Integer, primary_key=True),
            # Exactly one of the two: a target for one grant, or the default of a consumer department.
            Column("grant_id", Integer, ForeignKey(self._fk("sharing_grants.id")), unique=True),
            Column("department", String(100), unique=True),
            Column("url", String(500), nullable=False),  # SQLAlchemy URL without its password
            Column("password_env", String(100)),  # the environment variable holding the password
            Column("target_schema", String(100)),
            Column("created_at", DateTime, nullable=False, default=utcnow),
        )  # fmt: skip
        self.deliveries = Table(
            "sharing_deliveries", m,
            Column("id", Integer, primary_key=True),
            Column("grant_id", Integer, ForeignKey(self._fk("sharing_grants.id")), nullable=False),
            Column("version", String(100)),
            Column("target", String(500)),  # URL (password hidden), schema and table
            Column("days", JSON),  # the days replaced; None for a table replaced whole
            Column("rows", Integer, nullable=False, default=0),
            Column("status", String(20), nullable=False),  # delivered | unchanged | failed
            Column("attempts", Integer, nullable=False, default=0),
            Column("error", Text),
            Column("started_at", DateTime, nullable=False),
            Column("finished_at", DateTime, nullable=False),
        )  # fmt: skip
        self.delivered_days = Table(
            "sharing_delivered_days", m,
            Column("grant_id", Integer, ForeignKey(self._fk("sharing_grants.id")), primary_key=True),
            Column("day", String(40), primary_key=True),  # ISO day, or "*" for a table delivered whole
            Column("digest", String(64), nullable=False),  # of the granted rows of that day
            Column("rows", Integer, nullable=False),
            Column("version", String(100), nullable=False),
            Column("delivered_at", DateTime, nullable=False),
        )  # fmt: skip

    def revoke(self, table: Table, row_id: int) -> bool:
        """Mark row ``row_id`` of ``table`` (tokens, grants) revoked now; False if there is no such row still
        active. Revocation only stamps ``revoked_at``: the row stays, so the audit trail can name what it was."""
        with self.engine.begin() as con:
            done = con.execute(
                update(table)
                .where(table.c.id == row_id, table.c.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            ).rowcount
        return bool(done)

    def _fk(self, target: str) -> str:
        return f"{self.schema}.{target}" if self.schema else target

    def create_all(self) -> Store:
        """Create the tables that do not exist yet (idempotent; no migrations needed for a first version)."""
        self.metadata.create_all(self.engine)
        return self

    def drop_all(self) -> None:
        self.metadata.drop_all(self.engine)


def _engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """Foreign keys on (SQLite ignores them otherwise) and WAL, so API readers do not wait for a writer."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.close()


def open_store(url: str | None = None) -> Store:
    return Store(url).create_all()
