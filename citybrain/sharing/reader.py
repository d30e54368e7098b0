"""Reads within grants: one locked-down DuckDB session per request over the live published version.

Each request attaches the tier files it needs READ_ONLY under the catalog names the enforced query uses
(``enforce.tier_catalog``), checks that they carry one version (a publication switches tiers one after the
other), locks the session down as ``citybrain.access`` does, runs the enforced query and closes. A
publication renames a new file over the live one; a request that opened the old one reads it to the end
(its inode lives on), so a reader never blocks a publication nor sees half of one. A page cursor pins the
version it started on (``<tier>/versions/<version>.duckdb``, kept for ``CITYBRAIN_POOL_KEEP`` publications).

Results are fetched in batches and refused, not truncated, past the row limit. Every read and refusal is
audited once per grant it went through, with the grant id.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import sqlglot
from sqlglot import exp

from citybrain.access import audit
from citybrain.access.query import LOCKDOWN
from citybrain.access.sql_guard import QueryRejected
from citybrain.pool_layout import PUBLISHED_SCHEMA, pool_dir, tier_path
from citybrain.publication import VERSION_PATTERN, VERSIONS_DIR
from citybrain.sharing.enforce import DIALECT, EnforcedQuery, enforce, tier_catalog
from citybrain.sharing.grants import Grant

BATCH_ROWS = 2048
SWITCH_RETRIES = 20


class ResultTooLarge(ValueError):
    """More rows than the limit: narrow the query or read it page by page."""


class NotPublished(FileNotFoundError):
    """The tier (or the version a cursor pinned) is not on disk."""


class BadCursor(ValueError):
    """A cursor that is not one of ours or belongs to another query."""


@dataclass(frozen=True)
class ReadResult:
    table: pa.Table
    version: str
    grants: tuple[Grant, ...]


class Reader:
    """Runs reads for one caller: ``user`` (the account name) and ``via`` go into every audit record."""

    def __init__(self, user: str, via: str = "api", directory: Path | None = None):
        self.user = user
        self.via = via
        self.directory = directory

    def query(
        self,
        sql: str,
        grants: Sequence[Grant],
        max_rows: int,
        *,
        action: str = "read",
        version: str | None = None,
        audited_sql: str | None = None,
        target: str | None = None,
    ) -> ReadResult:
        """Enforce ``grants`` on ``sql``, run it and audit it (``target``: where an export was written)."""
        by_table = {g.table: g for g in grants}
        suffix = secrets.token_hex(8)
        try:
            enforced = enforce(sql, by_table, suffix)
        except QueryRejected as error:
            self._audit(
                action, "rejected", audited_sql or sql, grants_for_refusal(sql, by_table), detail=str(error)
            )
            raise
        try:
            table, read_version = self._run(enforced, max_rows, version, suffix)
        except ResultTooLarge as error:
            self._audit(action, "rejected", audited_sql or sql, enforced.grants, detail=str(error))
            raise
        except duckdb.Error as error:
            self._audit(action, "error", audited_sql or sql, enforced.grants, detail=str(error))
            raise
        self._audit(
            action, "ok", audited_sql or sql, enforced.grants, rows=table.num_rows, version=read_version,
            target=target,
        )  # fmt: skip
        return ReadResult(table, read_version, enforced.grants)

    def _run(self, enforced: EnforcedQuery, max_rows: int, version: str | None, suffix: str):
        tiers = sorted({g.tier for g in enforced.grants})
        con, read_version = open_session(tiers, self.directory, version, suffix)
        try:
            reader = con.execute(enforced.sql).fetch_record_batch(BATCH_ROWS)
            batches, rows = [], 0
            for batch in reader:
                rows += batch.num_rows
                if rows > max_rows:
                    raise ResultTooLarge(
                        f"the result has more than {max_rows:,} rows: narrow the query, aggregate, or page "
                        "through the table"
                    )
                batches.append(batch)
            return pa.Table.from_batches(batches, schema=reader.schema), read_version
        finally:
            con.close()

    def _audit(self, action, outcome, sql, grants, *, rows=None, detail=None, version=None, target=None):
        audit_read(
            self.user, self.via, action, outcome, sql, grants,
            rows=rows, detail=detail, version=version, target=target,
        )  # fmt: skip


def audit_read(
    user, via, action, outcome, sql, grants, *, rows=None, detail=None, version=None, target=None
) -> None:
    """One audit record per grant a read went through (one without a grant if it named none), so every
    record carries its grant and application id. Shared by the API, the CLI and the SQLAlchemy URL."""
    for grant in grants or (None,):
        audit.append(
            action,
            outcome=outcome,
            user=user,
            via=via,
            tiers=[grant.tier] if grant else (),
            tables=[grant.table] if grant else (),
            sql=sql,
            rows=rows,
            target=target or (f"version {version}" if version else None),
            detail=detail,
            application_id=grant.application_id if grant else None,
            grant_id=grant.id if grant else None,
        )


def grants_for_refusal(sql: str, by_table: Mapping[str, Grant]) -> list[Grant]:
    """The grants a refused query named (so a refusal is filed under its grant too), best effort."""
    try:
        tree = sqlglot.parse_one(sql, dialect=DIALECT)
    except Exception:  # noqa: BLE001 - unparsable SQL simply names no grant
        return []
    named = {f"{t.db or PUBLISHED_SCHEMA}.{t.name}" for t in tree.find_all(exp.Table)}
    return [g for t, g in by_table.items() if t in named]


def open_session(
    tiers: Sequence[str], directory: Path | None = None, version: str | None = None, suffix: str = ""
):
    """A locked-down in-memory DuckDB with ``tiers`` attached READ_ONLY, all of one version: the live one,
    or ``version`` (an older version kept on disk)."""
    if version is not None and not VERSION_PATTERN.match(version):
        raise BadCursor("not a publication version")
    for _attempt in range(SWITCH_RETRIES):
        con = duckdb.connect(":memory:")
        try:
            versions = set()
            for tier in tiers:
                path = _tier_file(tier, directory, version)
                catalog = tier_catalog(tier, suffix)
                con.execute(f"ATTACH '{_sql_path(path)}' AS \"{catalog}\" (READ_ONLY)")
                (attached,) = con.execute(f'SELECT version FROM "{catalog}".meta.publication').fetchone()
                versions.add(attached)
            if len(versions) <= 1:
                for statement in LOCKDOWN:
                    con.execute(statement)
                return con, (versions.pop() if versions else version or "")
        except BaseException:
            con.close()
            raise
        con.close()
        time.sleep(0.05)
    raise RuntimeError("published tiers stay at different versions: a publication is broken")


def live_version(tier: str, directory: Path | None = None) -> str:
    con, version = open_session([tier], directory)
    con.close()
    return version


def _tier_file(tier: str, directory: Path | None, version: str | None) -> Path:
    if version is None:
        path = tier_path(tier, directory)
    else:
        path = (directory or pool_dir()) / tier / VERSIONS_DIR / f"{version}.duckdb"
    if not path.exists():
        what = f"version {version} of the {tier} tier" if version else f"the {tier} tier"
        raise NotPublished(f"{what} is not available" + (" any more: start again" if version else ""))
    return path


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


# --- pages and cursors -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class PageRequest:
    table: str  # pool.<table>
    columns: tuple[str, ...]
    filters: tuple[tuple[str, str], ...]  # (column, value): equality, all must hold
    sort: tuple[tuple[str, bool], ...]  # (column, descending)

    def fingerprint(self) -> str:
        return hashlib.sha256(
            json.dumps([self.table, self.columns, self.filters, self.sort]).encode()
        ).hexdigest()[:16]


def page_sql(request: PageRequest, all_columns: Sequence[str], offset: int, limit: int) -> str:
    """The page as SQL built from sqlglot expressions (never pasted strings): it then goes through ``enforce``
    like any caller's query. Ties are broken by every column, so pages of an immutable version are stable."""
    schema, name = request.table.split(".", 1)
    query = exp.select(*(exp.column(c, quoted=True) for c in request.columns)).from_(
        exp.table_(exp.to_identifier(name, quoted=True), db=exp.to_identifier(schema, quoted=True))
    )
    for column, value in request.filters:
        cast = exp.cast(exp.column(column, quoted=True), exp.DataType.build("VARCHAR"))
        query = query.where(exp.EQ(this=cast, expression=exp.Literal.string(value)))
    order = [
        exp.Ordered(this=exp.column(c, quoted=True), desc=desc, nulls_first=False) for c, desc in request.sort
    ]
    sorted_columns = {c for c, _ in request.sort}
    order += [
        exp.Ordered(this=exp.column(c, quoted=True), nulls_first=False)
        for c in all_columns
        if c not in sorted_columns
    ]
    query = query.order_by(*order).limit(limit).offset(offset)
    return query.sql(dialect=DIALECT)


def encode_cursor(request: PageRequest, version: str, offset: int) -> str:
    raw = json.dumps({"v": version, "o": offset, "f": request.fingerprint()}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, request: PageRequest) -> tuple[str, int]:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        version, offset, fingerprint = str(data["v"]), int(data["o"]), str(data["f"])
    except (ValueError, KeyError, TypeError):
        raise BadCursor("not a cursor of this service") from None
    if fingerprint != request.fingerprint() or offset < 0 or not VERSION_PATTERN.match(version):
        raise BadCursor("the cursor belongs to another query (same columns, filters and sort are required)")
    return version, offset
