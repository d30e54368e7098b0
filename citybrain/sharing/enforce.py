"""Enforce grants on a caller's SQL: check it, then wrap every granted table in its granted slice.

1. ``sql_guard.check_query`` (DuckDB's own parser) first: one statement, a SELECT, no file-reading,
   settings or extension functions, only granted tables.
2. sqlglot (duckdb dialect) parses it again: every table must be a granted ``pool.<table>`` or a CTE of the
   query; table functions (``range``, ``read_csv`` …), catalogs and metadata schemas are refused.
3. Columns are checked against the granted ones only (sqlglot's ``qualify`` with a schema of granted
   columns): an ungranted column is refused with the same message as a column that does not exist, so a
   caller learns nothing about columns outside the grant. ``SELECT *`` is allowed and means the granted
   columns (the wrapper below exposes no others).
4. Every granted table reference is replaced by a subquery built as sqlglot expressions —
   ``(SELECT <granted columns> FROM "citybrain_<tier>"."pool"."<table>" WHERE CAST(<column> AS VARCHAR)
   IN (<values>)) AS <the caller's alias>`` — so whatever the query does, it reads only that slice. The
   session attaches the tier files under those catalog names and creates no other name to reach them.

Step 4 is the enforcement; steps 1-3 give clear errors and are a second line behind it. Masked columns stay
masked because the tier files hold only the masked values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import OptimizeError, ParseError
from sqlglot.optimizer.qualify import qualify

from citybrain.access.sql_guard import QueryRejected, check_query
from citybrain.pool_layout import PUBLISHED_SCHEMA
from citybrain.sharing.grants import Grant

DIALECT = "duckdb"


@dataclass(frozen=True)
class EnforcedQuery:
    sql: str  # what the engine runs
    grants: tuple[Grant, ...]  # the grants the query reads through (for the audit log)


def tier_catalog(tier: str, suffix: str = "") -> str:
    """The name a tier file is attached under in a sharing session. Callers cannot name catalogs at all, and
    the reader adds a random ``suffix`` per request, so even a reference both parsers missed would have to
    guess the name."""
    return f"citybrain_{tier}_{suffix}" if suffix else f"citybrain_{tier}"


def enforce(sql: str, grants: Mapping[str, Grant], catalog_suffix: str = "") -> EnforcedQuery:
    """Rewrite ``sql`` so it reads only what ``grants`` (by ``pool.<table>``) allow; ``QueryRejected`` if it
    reaches for anything else. Tier files are expected under ``tier_catalog(tier, catalog_suffix)``."""
    check_query(sql, set(grants), default_schema=PUBLISHED_SCHEMA)
    try:
        statements = sqlglot.parse(sql, dialect=DIALECT)
    except ParseError as error:
        raise QueryRejected(f"cannot parse the query: {str(error).splitlines()[0]}") from None
    statements = [s for s in statements if s is not None]
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise QueryRejected("exactly one SELECT/WITH query is allowed")
    tree = statements[0]
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    used: dict[str, Grant] = {}
    references: list[tuple[exp.Table, Grant]] = []
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            raise QueryRejected("table functions are not allowed here; read granted pool tables only")
        if table.catalog:
            raise QueryRejected("name tables as pool.<table>, not through a catalog")
        if not table.db and table.name in ctes:
            continue
        qualified = f"{table.db or PUBLISHED_SCHEMA}.{table.name}"
        grant = grants.get(qualified)
        if grant is None or (table.db and table.db != PUBLISHED_SCHEMA):
            raise QueryRejected(f"table {table.sql(DIALECT)} is not granted to you")
        used[qualified] = grant
        references.append((table, grant))
    _check_columns(tree, used)
    for table, grant in references:
        alias = table.alias or table.name
        slice_ = granted_slice(grant, catalog_suffix).subquery(alias=exp.to_identifier(alias, quoted=True))
        table.replace(slice_)
    return EnforcedQuery(sql=tree.sql(dialect=DIALECT), grants=tuple(used.values()))


def granted_slice(grant: Grant, catalog_suffix: str = "") -> exp.Select:
    """``SELECT <granted columns> FROM <tier catalog>.pool.<table> [WHERE <column> IN (<values>)]``."""
    source = exp.Table(
        this=exp.to_identifier(grant.table_name, quoted=True),
        db=exp.to_identifier(PUBLISHED_SCHEMA, quoted=True),
        catalog=exp.to_identifier(tier_catalog(grant.tier, catalog_suffix), quoted=True),
    )
    query = exp.select(*(exp.column(c, quoted=True) for c in grant.columns)).from_(source)
    if grant.row_filter_column:
        values = [exp.Literal.string(v) for v in grant.row_filter_values or ()]
        cast = exp.cast(exp.column(grant.row_filter_column, quoted=True), exp.DataType.build("VARCHAR"))
        query = query.where(cast.isin(*values) if values else exp.false())
    return query


def _check_columns(tree: exp.Expression, used: Mapping[str, Grant]) -> None:
    schema = {
        PUBLISHED_SCHEMA: {
            grant.table_name: dict.fromkeys(grant.columns, "VARCHAR") for grant in used.values()
        }
    }
    if not used:  # a query over no table (``SELECT current_schema()`` from SQLAlchemy): nothing to resolve
        schema = None
    try:
        qualify(
            tree.copy(),
            schema=schema,
            dialect=DIALECT,
            validate_qualify_columns=True,
            identify=False,
        )
    except OptimizeError as error:
        message = str(error).split(". Line")[0]
        raise QueryRejected(f"{message}: the column is not granted to you or does not exist") from None
