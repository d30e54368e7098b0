"""The sharing service's HTTP API (接口): token-authenticated reads within grants, with OpenAPI docs.

FastAPI on Starlette/uvicorn. Every data endpoint takes ``Authorization: Bearer <token>``; the token's
account's active grants (only those of its application, when the token is bound to one) are all it can
read. Pages, exports and SQL all go through ``enforce`` and ``Reader`` (one enforcement path). Errors are
JSON ``{"error": <code>, "message": <text>}`` and never name a table or column outside the caller's grants:
an ungranted table reads as "no active grant", an ungranted column as "not granted or does not exist".

Limits (catalog/sharing.yaml): requests per minute per token (HTTP 429, in the memory of this process: run
one process per service, or put a shared limiter in front), rows of a query or page and rows of an export
(HTTP 413: refused, never silently truncated). People log in with name and password (``/v1/login``) and get
a token valid for ``LOGIN_TOKEN_HOURS``; repeated failures lock the account for a while.

No ``from __future__ import annotations`` here: FastAPI reads the endpoint annotations at run time.
"""

import collections
import decimal
import io
import json
import re
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

import duckdb
import pyarrow as pa
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from citybrain.access.sql_guard import QueryRejected
from citybrain.sharing.accounts import LoginFailed, authenticate
from citybrain.sharing.config import SharingConfig
from citybrain.sharing.grants import Grant, active_grants
from citybrain.sharing.portal import mount_portal
from citybrain.sharing.reader import (
    BadCursor,
    NotPublished,
    PageRequest,
    Reader,
    ResultTooLarge,
    decode_cursor,
    encode_cursor,
    page_sql,
)
from citybrain.sharing.store import Store, utcnow
from citybrain.sharing.tokens import TokenInvalid, TokenOwner, issue_token, resolve_token

LOGIN_TOKEN_HOURS = 8
DEFAULT_PAGE_SIZE = 100
_CATALOG_NAME = re.compile(r'"?citybrain_[a-z]+(_[0-9a-f]+)?"?\.("?pool"?\.)?')


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


class LoginBody(BaseModel):
    name: str = Field(max_length=100)
    password: str = Field(max_length=1000)


class QueryBody(BaseModel):
    sql: str = Field(
        max_length=100_000, description="one read-only SELECT/WITH query over your granted tables"
    )


@dataclass
class Caller:
    owner: TokenOwner
    grants: list[Grant]
    reader: Reader

    def grant_for(self, table: str) -> Grant:
        qualified = table if table.startswith("pool.") else f"pool.{table}"
        for grant in self.grants:
            if grant.table == qualified:
                return grant
        raise ApiError(404, "not_granted", f"you have no active grant for table {table!r}")


class RateLimiter:
    """A sliding one-minute window of request times per token."""

    def __init__(self, per_minute: int):
        self.per_minute = per_minute
        self.seen: dict[int, collections.deque] = collections.defaultdict(collections.deque)
        self.lock = threading.Lock()

    def check(self, token_id: int) -> None:
        now = time.monotonic()
        with self.lock:
            window = self.seen[token_id]
            while window and window[0] <= now - 60:
                window.popleft()
            if len(window) >= self.per_minute:
                retry = max(1, int(60 - (now - window[0])) + 1)
                raise ApiError(
                    429, "rate_limited", f"more than {self.per_minute} requests a minute with this token",
                    headers={"Retry-After": str(retry)},
                )  # fmt: skip
            window.append(now)


def create_app(
    store: Store, config: SharingConfig, pool_directory: Path | None = None, catalog_path: Path | None = None
) -> FastAPI:
    limits = config.limits
    limiter = RateLimiter(limits.requests_per_minute)
    app = FastAPI(
        title="City Brain Lake sharing service",
        version="1",
        description="Read the published data pool within your grants (docs/SHARING.md).",
    )

    @app.exception_handler(ApiError)
    async def _api_error(_request, error: ApiError):
        return JSONResponse(
            {"error": error.code, "message": error.message}, error.status, headers=error.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request, error: RequestValidationError):
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        return JSONResponse({"error": "bad_request", "message": problems}, 422)

    def caller(request: Request) -> Caller:
        header = request.headers.get("authorization", "")
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret:
            raise ApiError(401, "unauthenticated", "send Authorization: Bearer <token>",
                           headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
        try:
            owner = resolve_token(store, secret.strip())
        except TokenInvalid:
            raise ApiError(401, "invalid_token", "the token is unknown, revoked or expired",
                           headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None  # fmt: skip
        limiter.check(owner.token_id)
        grants = active_grants(store, owner.account.id, owner.application_id)
        return Caller(owner, grants, Reader(owner.account.name, via="api", directory=pool_directory))

    Authed = Annotated[Caller, Depends(caller)]

    @app.post("/v1/login", summary="Log in with name and password; returns a token")
    def login(body: LoginBody):
        try:
            account = authenticate(store, body.name, body.password, limits, via="api")
        except LoginFailed as error:
            raise ApiError(401, "login_failed", str(error)) from None
        issued = issue_token(
            store, account, "login", expires_at=utcnow() + timedelta(hours=LOGIN_TOKEN_HOURS), by=account.name
        )
        return {"token": issued.secret, "expires_at": issued.expires_at.isoformat() + "Z"}

    @app.get("/v1/resources", summary="Your active grants: tables, columns, rows, end time")
    def resources(who: Authed):
        return {"account": who.owner.account.name, "grants": [g.describe() for g in who.grants]}

    @app.get(
        "/v1/tables/{table}/rows", summary="A page of a granted table, with filters, sorting and a cursor"
    )
    def rows(
        who: Authed,
        table: str,
        columns: Annotated[str | None, Query(description="comma-separated; default: all granted")] = None,
        filter: Annotated[list[str] | None, Query(description="column:value, equality; repeatable")] = None,  # noqa: A002
        sort: Annotated[
            str | None, Query(description="comma-separated columns, -column for descending")
        ] = None,
        limit: Annotated[
            int | None, Query(ge=1, description="rows a page (default 100, at most the limit)")
        ] = None,
        cursor: str | None = None,
    ):
        grant = who.grant_for(table)
        largest = min(limits.max_page_size, limits.max_result_rows)
        limit = limit or min(DEFAULT_PAGE_SIZE, largest)
        if limit > largest:
            raise ApiError(413, "too_large", f"at most {largest} rows a page")
        request = _page_request(grant, columns, filter, sort)
        version, offset = None, 0
        if cursor:
            try:
                version, offset = decode_cursor(cursor, request)
            except BadCursor as error:
                raise ApiError(400, "bad_cursor", str(error)) from None
        sql = page_sql(request, grant.columns, offset, limit + 1)
        result = _read(who, sql, limit + 1, version=version)
        table_rows = result.table.slice(0, limit)
        more = result.table.num_rows > limit
        return _json({
            "table": grant.table,
            "version": result.version,
            "columns": list(request.columns),
            "rows": table_rows.to_pylist(),
            "next_cursor": encode_cursor(request, result.version, offset + limit) if more else None,
        })  # fmt: skip

    @app.get("/v1/tables/{table}/export", summary="A granted table (filtered) as CSV, Parquet or JSON")
    def export(
        who: Authed,
        table: str,
        format: Literal["csv", "parquet", "json"] = "csv",  # noqa: A002
        columns: str | None = None,
        filter: Annotated[list[str] | None, Query()] = None,  # noqa: A002
        sort: str | None = None,
    ):
        grant = who.grant_for(table)
        request = _page_request(grant, columns, filter, sort)
        sql = page_sql(request, grant.columns, 0, limits.max_export_rows + 1)
        result = _read(who, sql, limits.max_export_rows, action="export")
        return _encode(result.table, format, grant.table_name, result.version)

    @app.post("/v1/query", summary="One read-only SQL query within your grants (JSON rows)")
    def run_query(who: Authed, body: QueryBody):
        result = _read(who, body.sql, limits.max_result_rows, audited_sql=body.sql)
        return _json({
            "version": result.version,
            "columns": result.table.column_names,
            "rows": result.table.to_pylist(),
            "grants": [g.id for g in result.grants],
        })  # fmt: skip

    mount_portal(app, store, config, pool_directory, catalog_path)  # the web pages under /portal
    return app


def _read(who: Caller, sql: str, max_rows: int, *, action: str = "read", version=None, audited_sql=None):
    if not who.grants:
        raise ApiError(403, "no_grants", "you have no active grant (expired, revoked or never approved)")
    try:
        return who.reader.query(
            sql, who.grants, max_rows, action=action, version=version, audited_sql=audited_sql
        )
    except QueryRejected as error:
        raise ApiError(403, "query_rejected", str(error)) from None
    except ResultTooLarge as error:
        raise ApiError(413, "too_large", str(error)) from None
    except (NotPublished, BadCursor) as error:
        raise ApiError(410 if version else 503, "not_available", str(error)) from None
    except duckdb.Error as error:
        first = str(error).strip().splitlines()[0]
        raise ApiError(400, "query_failed", _CATALOG_NAME.sub("", first)) from None


def _page_request(
    grant: Grant, columns: str | None, filters: list[str] | None, sort: str | None
) -> PageRequest:
    granted = set(grant.columns)
    wanted = tuple(c.strip() for c in columns.split(",") if c.strip()) if columns else grant.columns
    parsed_filters = []
    for item in filters or []:
        column, sep, value = item.partition(":")
        if not sep:
            raise ApiError(400, "bad_request", f"filter {item!r}: write column:value")
        parsed_filters.append((column.strip(), value))
    parsed_sort = []
    for item in (sort or "").split(","):
        item = item.strip()
        if item:
            parsed_sort.append((item.lstrip("-"), item.startswith("-")))
    named = set(wanted) | {c for c, _ in parsed_filters} | {c for c, _ in parsed_sort}
    refused = sorted(named - granted)
    if refused:
        raise ApiError(
            403, "column_not_granted", f"column(s) not granted to you or unknown: {', '.join(refused)}"
        )
    return PageRequest(grant.table, tuple(wanted), tuple(parsed_filters), tuple(parsed_sort))


def _json(payload: dict) -> Response:
    return Response(json.dumps(payload, ensure_ascii=False, default=_plain), media_type="application/json")


def _plain(value):
    """JSON for what Arrow hands back: whole decimals (DuckDB sums are HUGEINT/DECIMAL) as numbers, other
    decimals as strings (no silent float rounding), dates and times in ISO 8601."""
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _encode(table: pa.Table, format: str, name: str, version: str) -> Response:  # noqa: A002
    buffer = io.BytesIO()
    if format == "csv":
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, buffer)
        media = "text/csv; charset=utf-8"
    elif format == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, buffer)
        media = "application/vnd.apache.parquet"
    else:
        buffer.write(json.dumps(table.to_pylist(), ensure_ascii=False, default=_plain).encode())
        media = "application/json"
    headers = {
        "Content-Disposition": f'attachment; filename="{name}_{version}.{format}"',
        "X-Pool-Version": version,
    }
    return Response(buffer.getvalue(), media_type=media, headers=headers)


def serve(store: Store, config: SharingConfig, host: str = "127.0.0.1", port: int = 8780) -> None:
    import uvicorn

    uvicorn.run(create_app(store, config), host=host, port=port, log_level="info")
