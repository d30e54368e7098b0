"""Table delivery (库表): push each active table grant's slice of the live published version into the
consumer's database (PostgreSQL or MySQL/MariaDB, ``delivery_targets``), after every publication.

What is pushed is exactly what the API would serve the grant: ``enforce.granted_slice`` (the granted columns,
the row filter) over the tier file of the live version, opened read-only and locked down like an API read.
The consumer's table is ``<pool table>_g<grant id>`` in the target's schema, created on the first delivery.

**Incremental by content.** A daily fact (its day column is in the version's ``meta.table_days`` and among
the granted columns) is delivered day by day; any other table (a dimension, or a fact whose day column is
not granted) whole. For each day (or the whole table) a digest of the granted rows is computed in DuckDB
(``sql/slice_digests.sql``) and compared with the digest recorded when it was last delivered
(``sharing_delivered_days``): only new days and days whose granted content changed go out. A digest, not
the version that last changed a day, because a publication copies daily facts whole and the published
versions do not say which days changed; and a change in an ungranted column correctly sends nothing.

**All or nothing per table.** The days to replace are deleted and their rows inserted in one transaction of
the consumer's database (a table delivered whole: all rows deleted and inserted), so a consumer sees the
old or the new content, never half (MySQL/MariaDB: the table must be InnoDB, the default). A failure rolls
the transaction back and is tried again ``attempts`` times with a doubling pause (``catalog/sharing.yaml``,
``delivery:``); then it is recorded as failed, audited, and the next run tries again. The digests are
recorded only after the consumer's transaction committed; should recording fail, the next run delivers
those days again, which replaces them (no duplicates).

**Stops with the grant.** Only grants active now are delivered (checked again right before writing): after
the end or a revocation nothing more is pushed. Rows already delivered stay in the consumer's table — they
were lawfully received under the grant, and deleting data in another department's database is theirs to
do under their retention rules (docs/SHARING.md).

Every delivery that pushed rows or failed is an ``export`` audit record (via ``delivery``) with the grant id
and application id; every run per grant is a row of ``sharing_deliveries``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import math
import os
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from pathlib import Path

import duckdb
import pyarrow as pa
import sqlglot
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Double,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    Table,
    Text,
    Time,
    delete,
    or_,
    select,
)
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from citybrain import settings
from citybrain.access import audit
from citybrain.sharing.config import Delivery, load_config
from citybrain.sharing.delivery_targets import Target, TargetError, target_for
from citybrain.sharing.enforce import DIALECT, granted_slice, tier_catalog
from citybrain.sharing.grants import Grant
from citybrain.sharing.reader import NotPublished, open_session
from citybrain.sharing.store import Store, utcnow

WHOLE = "*"  # the digest key of a table delivered whole
NULL_DAY = "<null>"  # the digest key of rows whose day is NULL
MAX_IDENTIFIER = 63  # PostgreSQL's limit (MySQL's is 64)
LOCK_FILE = ".delivery.lock"
STATUSES = ("delivered", "unchanged", "stopped", "failed")


@dataclass(frozen=True)
class DayDigest:
    value: object  # the day as DuckDB returns it (a date ...); None for NULL days and whole tables
    rows: int
    digest: str


@dataclass
class DeliveryResult:
    """One grant's delivery of one run."""

    grant_id: int
    status: str = "failed"  # one of STATUSES
    version: str | None = None
    target: str | None = None  # URL (password hidden), schema.table
    days: list[str] | None = None  # days replaced; None when the table was replaced whole
    rows: int = 0
    attempts: int = 0
    error: str | None = None


@dataclass
class _Plan:
    day_column: str | None
    changed: dict[str, DayDigest] = field(default_factory=dict)
    replace_all: bool = False  # delete every row of the consumer's table first


# --- the run ----------------------------------------------------------------------------------------------
def existing_store() -> Store | None:
    """The configured sharing database with the delivery tables created, or None when the default SQLite
    file does not exist (no sharing service on this lake: nothing to deliver, and nothing is created)."""
    url = settings.sharing_db_url()
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return None
    return Store(url).create_all()


def deliver_all(
    store: Store,
    directory: Path | None = None,
    config: Delivery | None = None,
    now: datetime | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[DeliveryResult]:
    """Deliver every active table grant (one after the other; a failure does not stop the others)."""
    if not table_grants(store, now):
        return []
    config = config or load_config().delivery
    with _one_at_a_time():  # a second run waits, then finds the days already delivered
        return [
            deliver_grant(store, grant, user, department, directory, config, sleep)
            for grant, user, department in table_grants(store, now)
        ]


@contextlib.contextmanager
def _one_at_a_time():
    """An exclusive lock on ``$CITYBRAIN_HOME/sharing/.delivery.lock``: two runs replacing the same day in
    the same consumer table at once could both insert it."""
    path = settings.home() / "sharing" / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def table_grants(store: Store, now: datetime | None = None) -> list[tuple[Grant, str, str]]:
    """Active grants with table delivery, with their consumer's account name and department."""
    now = now or utcnow()
    g, a = store.grants, store.accounts
    query = (
        select(g, a.c.name.label("account_name"), a.c.department.label("account_department"))
        .join(a, a.c.id == g.c.account_id)
        .where(g.c.delivery == "table", g.c.revoked_at.is_(None), g.c.starts_at <= now, g.c.ends_at > now)
        .order_by(g.c.id)
    )
    with store.engine.connect() as con:
        return [(Grant.from_row(r), r.account_name, r.account_department) for r in con.execute(query)]


def deliver_grant(
    store: Store,
    grant: Grant,
    user: str,
    department: str,
    directory: Path | None,
    config: Delivery,
    sleep: Callable[[float], None] = time.sleep,
) -> DeliveryResult:
    started = utcnow()
    result = DeliveryResult(grant.id)
    suffix = secrets.token_hex(8)
    try:
        target = target_for(store, grant, department)
        result.target = f"{target.shown()} {consumer_table_name(grant, target)}"
        con, result.version = open_session([grant.tier], directory, suffix=suffix)
    except (TargetError, NotPublished, duckdb.Error, RuntimeError) as error:
        result.error = str(error)
        return _finish(store, grant, user, result, started, None)
    try:
        try:
            plan = _plan(con, store, grant, suffix)
        except (duckdb.Error, SQLAlchemyError) as error:
            result.error = describe_error(error)
            return _finish(store, grant, user, result, started, None)
        if not plan.changed:
            result.status = "unchanged"
            return _finish(store, grant, user, result, started, plan)
        result.days = None if plan.day_column is None else sorted(plan.changed)
        for attempt in range(1, config.attempts + 1):
            if not still_active(store, grant.id):
                result.status, result.error = "stopped", "the grant ended or was revoked during the run"
                return _finish(store, grant, user, result, started, plan)
            result.attempts = attempt
            try:
                result.rows = _write(con, grant, target, plan, suffix, config.batch_rows)
                result.status, result.error = "delivered", None
                break
            except Exception as error:  # noqa: BLE001 - any failure is rolled back, retried, reported
                result.error = describe_error(error)
                if attempt < config.attempts:
                    sleep(config.backoff_seconds * 2 ** (attempt - 1))
        return _finish(store, grant, user, result, started, plan)
    finally:
        con.close()


def still_active(store: Store, grant_id: int) -> bool:
    g = store.grants
    now = utcnow()
    with store.engine.connect() as con:
        row = con.execute(select(g.c.revoked_at, g.c.ends_at).where(g.c.id == grant_id)).first()
    return row is not None and row.revoked_at is None and row.ends_at > now


def describe_error(error: BaseException) -> str:
    """The database's own message, first line only: never the statement's parameters (row values)."""
    if isinstance(error, DBAPIError) and error.orig is not None:
        text = f"{type(error.orig).__name__}: {error.orig}"
    else:
        text = f"{type(error).__name__}: {error}"
    return (text.strip().splitlines() or [""])[0][:500]


# --- what to send -----------------------------------------------------------------------------------------
def consumer_table_name(grant: Grant, target: Target) -> str:
    name = f"{grant.table_name}_g{grant.id}"
    if len(name) > MAX_IDENTIFIER:
        raise TargetError(f"the consumer table name {name} is longer than {MAX_IDENTIFIER} characters")
    return f"{target.schema}.{name}" if target.schema else name


def day_column(con, grant: Grant, suffix: str) -> str | None:
    """The daily fact's day column from the version's meta.table_days, when it is granted; else None."""
    catalog = tier_catalog(grant.tier, suffix)
    (exists,) = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND schema_name = 'meta' "
        "AND table_name = 'table_days'",
        [catalog],
    ).fetchone()
    if not exists:
        return None
    row = con.execute(
        f'SELECT day_column FROM "{catalog}".meta.table_days WHERE table_name = ?', [grant.table_name]
    ).fetchone()
    column = row[0] if row else None
    return column if column in grant.columns else None


@cache
def _digest_template() -> sqlglot.exp.Select:
    text = (
        resources.files("citybrain.sharing").joinpath("sql", "slice_digests.sql").read_text(encoding="utf-8")
    )
    return sqlglot.parse_one(text, dialect=DIALECT)


def digests_sql(grant: Grant, column: str | None, suffix: str) -> str:
    """``sql/slice_digests.sql`` with the grant's slice and day column put in as expressions."""
    exp = sqlglot.exp
    tree = _digest_template().copy()
    slice_ = granted_slice(grant, suffix).subquery(alias=exp.to_identifier("granted"))

    def substitute(node):
        if isinstance(node, exp.Table) and node.name == "granted_slice":
            return slice_
        if isinstance(node, exp.Column) and node.name == "day_column":
            return exp.column(column, table="granted", quoted=True) if column else exp.null()
        return node

    tree = tree.transform(substitute)
    if column is None:
        tree.set("group", None)
    return tree.sql(dialect=DIALECT)


def slice_digests(con, grant: Grant, column: str | None, suffix: str) -> dict[str, DayDigest]:
    digests = {}
    for value, key, rows, upper, lower in con.execute(digests_sql(grant, column, suffix)).fetchall():
        key = WHOLE if column is None else (NULL_DAY if key is None else key)
        text = f"{rows}:{upper or 0}:{lower or 0}"
        digests[key] = DayDigest(value, rows, hashlib.sha256(text.encode()).hexdigest())
    return digests


def _plan(con, store: Store, grant: Grant, suffix: str) -> _Plan:
    column = day_column(con, grant, suffix)
    current = slice_digests(con, grant, column, suffix)
    d = store.delivered_days
    with store.engine.connect() as scon:
        delivered = dict(scon.execute(select(d.c.day, d.c.digest).where(d.c.grant_id == grant.id)).all())
    # Delivered whole before and by day now (or the other way round): the table is replaced whole once.
    replace_all = column is None or (bool(delivered) and (WHOLE in delivered) != (column is None))
    if replace_all and column is not None:
        return _Plan(column, dict(current), replace_all=True)
    changed = {key: digest for key, digest in current.items() if delivered.get(key) != digest.digest}
    return _Plan(column, changed, replace_all=column is None)


# --- sending ----------------------------------------------------------------------------------------------
def _column_type(t: pa.DataType):
    """The consumer's column type for a DuckDB (Arrow) type; None: sent as text."""
    checks = (
        (pa.types.is_boolean, Boolean),
        (lambda x: pa.types.is_int64(x) or pa.types.is_uint32(x), BigInteger),
        (lambda x: pa.types.is_integer(x) and not pa.types.is_uint64(x), Integer),
        (pa.types.is_uint64, lambda: Numeric(20, 0)),
        (pa.types.is_floating, Double),
        (pa.types.is_decimal, lambda: Numeric(t.precision, t.scale)),
        (lambda x: pa.types.is_string(x) or pa.types.is_large_string(x) or pa.types.is_string_view(x), Text),
        (pa.types.is_date, Date),
        (pa.types.is_timestamp, lambda: DateTime(timezone=t.tz is not None)),
        (pa.types.is_time, Time),
        (lambda x: pa.types.is_binary(x) or pa.types.is_large_binary(x), LargeBinary),
    )
    for check, make in checks:
        if check(t):
            return make()
    return None


def fetch_sql(grant: Grant, plan: _Plan, schema: pa.Schema, suffix: str) -> str:
    """The granted rows of the changed days; columns of types the consumer cannot hold are sent as text."""
    exp = sqlglot.exp
    columns = [
        exp.column(f.name, table="granted", quoted=True)
        if _column_type(f.type) is not None
        else exp.cast(exp.column(f.name, table="granted", quoted=True), "VARCHAR").as_(f.name, quoted=True)
        for f in schema
    ]
    query = exp.select(*columns).from_(granted_slice(grant, suffix).subquery(alias="granted"))
    if plan.day_column and not plan.replace_all:
        day = exp.column(plan.day_column, table="granted", quoted=True)
        keys = [k for k in plan.changed if k != NULL_DAY]
        conditions = []
        if keys:
            conditions.append(exp.cast(day.copy(), "VARCHAR").isin(*(exp.Literal.string(k) for k in keys)))
        if NULL_DAY in plan.changed:
            conditions.append(exp.Is(this=day.copy(), expression=exp.null()))
        query = query.where(exp.or_(*conditions))
    return query.sql(dialect=DIALECT)


def consumer_table(grant: Grant, target: Target, schema: pa.Schema, column: str | None) -> Table:
    name = consumer_table_name(grant, target).rsplit(".", 1)[-1]
    types = {f.name: _column_type(f.type) or Text() for f in schema}
    table = Table(name, MetaData(schema=target.schema), *(Column(c, t) for c, t in types.items()))
    if column is not None and not isinstance(types[column], Text):  # MySQL cannot index TEXT whole
        Index(f"ix_{name}"[:MAX_IDENTIFIER], table.c[column])
    return table


def _write(con, grant: Grant, target: Target, plan: _Plan, suffix: str, batch_rows: int) -> int:
    slice_sql = granted_slice(grant, suffix).sql(dialect=DIALECT)
    schema = con.execute(f"SELECT * FROM ({slice_sql}) LIMIT 0").fetch_arrow_table().schema
    reader = con.execute(fetch_sql(grant, plan, schema, suffix)).fetch_record_batch(batch_rows)
    table = consumer_table(grant, target, reader.schema, plan.day_column)
    engine = target.engine()
    try:
        # Outside the data transaction: MySQL commits DDL implicitly. An empty table is harmless.
        table.create(engine, checkfirst=True)
        rows = 0
        with engine.begin() as tcon:
            if plan.replace_all:
                tcon.execute(delete(table))
            else:
                tcon.execute(delete(table).where(_day_condition(table.c[plan.day_column], plan.changed)))
            for batch in reader:
                data = _prepare(batch.to_pylist(), engine.dialect.name)
                if data:
                    tcon.execute(table.insert(), data)
                    rows += len(data)
        return rows
    finally:
        engine.dispose()


def _day_condition(column, changed: Mapping[str, DayDigest]):
    values = [d.value for k, d in changed.items() if k != NULL_DAY]
    condition = column.in_(values)
    return or_(condition, column.is_(None)) if NULL_DAY in changed else condition


def _prepare(rows: Sequence[dict], dialect: str) -> list[dict]:
    """MySQL/MariaDB have no NaN and no time zones: NaN goes as NULL, aware times as naive UTC."""
    if dialect not in ("mysql", "mariadb"):
        return list(rows)

    def value(v):
        if isinstance(v, float) and math.isnan(v):
            return None
        if isinstance(v, datetime) and v.tzinfo is not None:
            return v.astimezone(UTC).replace(tzinfo=None)
        return v

    return [{k: value(v) for k, v in row.items()} for row in rows]


# --- records ----------------------------------------------------------------------------------------------
def _finish(
    store: Store, grant: Grant, user: str, result: DeliveryResult, started: datetime, plan: _Plan | None
) -> DeliveryResult:
    """The delivery record (and, once delivered, the digests) in one transaction; the audit record."""
    now = utcnow()
    with store.engine.begin() as con:
        if result.status == "delivered" and plan is not None:
            d = store.delivered_days
            stale = d.c.grant_id == grant.id
            if not plan.replace_all:
                stale = stale & d.c.day.in_(list(plan.changed))
            con.execute(delete(d).where(stale))
            con.execute(
                d.insert(),
                [
                    dict(
                        grant_id=grant.id,
                        day=key,
                        digest=digest.digest,
                        rows=digest.rows,
                        version=result.version,
                        delivered_at=now,
                    )
                    for key, digest in plan.changed.items()
                ],  # fmt: skip
            )
        con.execute(
            store.deliveries.insert().values(
                grant_id=grant.id,
                version=result.version,
                target=result.target,
                days=result.days,
                rows=result.rows,
                status=result.status,
                attempts=result.attempts,
                error=result.error,
                started_at=started,
                finished_at=now,
            )
        )
    if result.status in ("delivered", "failed"):
        what = "whole table" if result.days is None else f"days {', '.join(result.days)}"
        audit.append(
            "export",
            outcome="ok" if result.status == "delivered" else "error",
            user=user,
            via="delivery",
            tiers=[grant.tier],
            tables=[grant.table],
            rows=result.rows if result.status == "delivered" else None,
            target=result.target,
            detail=f"table delivery of version {result.version or '?'} ({what}), "
            f"{result.attempts} attempt(s)" + (f": {result.error}" if result.error else ""),
            application_id=grant.application_id,
            grant_id=grant.id,
        )
    return result


def delivery_records(store: Store, grant_id: int | None = None, limit: int | None = None) -> list[dict]:
    """Delivery records, newest first (of one grant when given)."""
    r = store.deliveries
    query = select(r).order_by(r.c.id.desc())
    if grant_id is not None:
        query = query.where(r.c.grant_id == grant_id)
    if limit is not None:
        query = query.limit(limit)
    with store.engine.connect() as con:
        return [dict(row._mapping) for row in con.execute(query)]
