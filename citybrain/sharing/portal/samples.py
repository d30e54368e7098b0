"""Sample rows on a resource page: the first rows of the viewer's grant, read like any API page.

The same path as ``GET /v1/tables/{table}/rows``: a page query of the *granted* columns built by
``reader.page_sql``, rewritten by ``enforce`` into the granted slice (columns and rows) and run by ``Reader``
on the published tier, audited with the grant id (``via="portal"``). A viewer without an active grant on
the table gets no rows at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from citybrain.access.sql_guard import QueryRejected
from citybrain.sharing.grants import Grant
from citybrain.sharing.reader import NotPublished, PageRequest, Reader, page_sql

SAMPLE_ROWS = 10


@dataclass(frozen=True)
class Sample:
    grant: Grant
    columns: list[str]
    rows: list[dict]
    version: str
    problem: str = ""


def sample_rows(user: str, grant: Grant, pool_directory: Path | None, limit: int = SAMPLE_ROWS) -> Sample:
    request = PageRequest(grant.table, grant.columns, (), ())
    sql = page_sql(request, grant.columns, 0, limit)
    try:
        result = Reader(user, via="portal", directory=pool_directory).query(sql, [grant], limit)
    except (NotPublished, QueryRejected) as error:
        return Sample(grant, list(grant.columns), [], "", problem=str(error).splitlines()[0])
    except duckdb.Error:  # the engine's message may name attached catalogs: say less
        return Sample(grant, list(grant.columns), [], "", problem="the sample could not be read")
    return Sample(grant, result.table.column_names, result.table.to_pylist(), result.version)
