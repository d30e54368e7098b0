"""Grants: what an approval gives a consumer — one table's columns and rows, in one tier, until an end time.

A grant is the only thing the data readers trust (``enforce``, ``reader``). It is created by an approval
(``applications.decide``) or, for the machine's owner, by the CLI; it serves nothing after ``ends_at`` or
once revoked. ``delivery`` says how it is used: ``api`` (this service) or ``table`` (pushed into the
consumer's database after each publication: ``delivery``, docs/SHARING.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select

from citybrain.access import audit
from citybrain.sharing.store import DELIVERIES, Store, record_from_row, utcnow


class GrantError(ValueError):
    """A grant that cannot be made (bad delivery, empty columns, end in the past)."""


@dataclass(frozen=True)
class Grant:
    id: int
    account_id: int
    application_id: int | None
    table: str  # pool.<table>
    tier: str
    columns: tuple[str, ...]
    row_filter_column: str | None
    row_filter_values: tuple[str, ...] | None
    delivery: str
    starts_at: datetime
    ends_at: datetime
    revoked_at: datetime | None

    @property
    def table_name(self) -> str:
        return self.table.split(".", 1)[1]

    def active(self, now: datetime | None = None) -> bool:
        now = now or utcnow()
        return self.revoked_at is None and self.starts_at <= now < self.ends_at

    @classmethod
    def from_row(cls, row) -> Grant:
        return record_from_row(cls, row)

    def describe(self) -> dict:
        return {
            "grant_id": self.id,
            "application_id": self.application_id,
            "table": self.table,
            "tier": self.tier,
            "columns": list(self.columns),
            "row_filter": (
                {"column": self.row_filter_column, "values": list(self.row_filter_values or ())}
                if self.row_filter_column
                else None
            ),
            "delivery": self.delivery,
            "ends_at": self.ends_at.isoformat() + "Z",
        }


def create_grant(
    store: Store,
    *,
    account_id: int,
    table: str,
    tier: str,
    columns: list[str],
    ends_at: datetime,
    row_filter_column: str | None = None,
    row_filter_values: list[str] | None = None,
    delivery: str = "api",
    application_id: int | None = None,
    granted_by: int | None = None,
    by: str,
    connection=None,
) -> int:
    if delivery not in DELIVERIES:
        raise GrantError(f"delivery must be one of {', '.join(DELIVERIES)}, not {delivery!r}")
    if not columns:
        raise GrantError("a grant names at least one column")
    if not table.startswith("pool."):
        raise GrantError(f"grants are on published pool tables (pool.<table>), not {table!r}")
    if (row_filter_column is None) != (row_filter_values is None):
        raise GrantError("a row filter needs both a column and its allowed values")
    now = utcnow()
    if ends_at <= now:
        raise GrantError(f"the grant would end in the past ({ends_at.isoformat()}Z)")
    values = dict(
        account_id=account_id,
        application_id=application_id,
        table_name=table,
        tier=tier,
        columns=list(columns),
        row_filter_column=row_filter_column,
        row_filter_values=[str(v) for v in row_filter_values] if row_filter_values is not None else None,
        delivery=delivery,
        starts_at=now,
        ends_at=ends_at,
        granted_by=granted_by,
    )
    if connection is not None:
        grant_id = connection.execute(store.grants.insert().values(**values)).inserted_primary_key[0]
    else:
        with store.engine.begin() as con:
            grant_id = con.execute(store.grants.insert().values(**values)).inserted_primary_key[0]
    audit.append(
        "grant",
        outcome="ok",
        user=by,
        via="sharing",
        tiers=[tier],
        tables=[table],
        application_id=application_id,
        grant_id=grant_id,
        detail=f"granted {', '.join(columns)}"
        + (f" where {row_filter_column} in {row_filter_values}" if row_filter_column else "")
        + f" until {ends_at.isoformat()}Z, delivery {delivery}",
    )
    return grant_id


def revoke_grant(store: Store, grant_id: int, *, by: str) -> None:
    if not store.revoke(store.grants, grant_id):
        raise GrantError(f"no active grant {grant_id}")
    audit.append("grant", outcome="ok", user=by, via="sharing", grant_id=grant_id, detail="revoked")


def get_grant(store: Store, grant_id: int) -> Grant:
    with store.engine.connect() as con:
        row = con.execute(select(store.grants).where(store.grants.c.id == grant_id)).first()
    if row is None:
        raise GrantError(f"no grant {grant_id}")
    return Grant.from_row(row)


def active_grants(
    store: Store, account_id: int, application_id: int | None = None, now: datetime | None = None
) -> list[Grant]:
    """The account's grants that serve data now (of one application, when the token is bound to one)."""
    now = now or utcnow()
    g = store.grants
    query = select(g).where(
        g.c.account_id == account_id,
        g.c.revoked_at.is_(None),
        g.c.starts_at <= now,
        g.c.ends_at > now,
    )
    if application_id is not None:
        query = query.where(g.c.application_id == application_id)
    with store.engine.connect() as con:
        return [Grant.from_row(r) for r in con.execute(query.order_by(g.c.id))]


def list_grants(store: Store, account_id: int | None = None, include_ended: bool = True) -> list[Grant]:
    g = store.grants
    query = select(g).order_by(g.c.id)
    if account_id is not None:
        query = query.where(g.c.account_id == account_id)
    if not include_ended:
        query = query.where(g.c.revoked_at.is_(None), or_(g.c.ends_at > utcnow()))
    with store.engine.connect() as con:
        return [Grant.from_row(r) for r in con.execute(query)]
