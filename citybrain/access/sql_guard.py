"""Is this SQL one read-only query over the tables a user may read? Decided by DuckDB's own parser.

DuckDB splits the text into statements (``extract_statements``: comments and string literals are handled
by the same parser that would run it, so ``select 1; drop …`` or a statement hidden after a comment cannot
slip through) and serialises the one SELECT into its parse tree (``json_serialize_sql``). The tree is then
walked: every table must be a readable pool table, a CTE or a metadata view, every table function must be
on a short allow-list and no function may read files, the environment or settings.

This is the first line only. The session that runs the query also has external access disabled, its
configuration locked and the tier files attached read-only (``query.py``), so what the guard misses the
engine still refuses.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

import duckdb

MAX_SQL_CHARS = 100_000
# Table functions that only compute: no file, network, catalog or setting behind them.
ALLOWED_TABLE_FUNCTIONS = {"range", "generate_series", "unnest"}
# Scalar functions that reach outside the query: files, environment, settings, extensions, dynamic SQL.
DENIED_FUNCTION = re.compile(
    r"^(read_.*|parquet_.*|sniff_.*|glob|getenv|current_setting|set_config|query|query_table|load_extension|"
    r"install_extension|duckdb_.*|pragma_.*|which_secret|.*_scan|st_read.*|write_.*|http.*|s3_.*|"
    r"json_execute_serialized_sql|json_deserialize_sql|sql_auto_complete|checkpoint|force_checkpoint|"
    r"enable_.*|disable_.*|iceberg_.*|delta_.*|postgres_.*|mysql_.*|sqlite_.*|excel_.*)$"
)
METADATA_SCHEMAS = {"information_schema", "pg_catalog"}
# Catalog listings SQLAlchemy and pandas use for introspection (`has_table`): they show only what the
# session holds, i.e. the granted tiers. Settings, secrets, extensions and file paths stay denied.
METADATA_FUNCTIONS = {
    "duckdb_tables", "duckdb_views", "duckdb_columns", "duckdb_schemas", "duckdb_types",
    "duckdb_constraints", "duckdb_indexes",
}  # fmt: skip


class QueryRejected(ValueError):
    """The SQL is not one read-only query over readable tables; the message says why."""


@dataclass(frozen=True)
class CheckedQuery:
    sql: str
    tables: tuple[str, ...]  # readable tables the query names, as "schema.table"


def check_query(sql: str, readable: Iterable[str], default_schema: str = "pool") -> CheckedQuery:
    """Accept one SELECT/WITH query that reads only ``readable`` tables ("schema.table"); raise
    ``QueryRejected`` otherwise. Returns the tables it reads, for the audit log."""
    readable = set(readable)
    if not sql or not sql.strip():
        raise QueryRejected("empty query")
    if len(sql) > MAX_SQL_CHARS:
        raise QueryRejected(f"query longer than {MAX_SQL_CHARS} characters")
    parser = duckdb.connect()
    try:
        try:
            statements = parser.extract_statements(sql)
        except duckdb.Error as error:
            raise QueryRejected(f"cannot parse the query: {_first_line(error)}") from None
        if len(statements) != 1:
            raise QueryRejected(
                f"exactly one statement allowed, found {len(statements)} "
                "(a ';' ends a statement, also after a comment)"
            )
        kind = statements[0].type.name
        if kind != "SELECT":
            raise QueryRejected(f"only SELECT/WITH queries are allowed, this is {kind}")
        (serialized,) = parser.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()
    finally:
        parser.close()
    tree = json.loads(serialized)
    if tree.get("error"):
        raise QueryRejected(f"only a plain SELECT/WITH query is allowed ({tree.get('error_message')})")
    if len(tree["statements"]) != 1:
        raise QueryRejected(f"exactly one statement allowed, found {len(tree['statements'])}")
    ctes = set(_cte_names(tree))
    touched = []
    for node in _walk(tree):
        kind = node.get("type")
        if kind == "BASE_TABLE":
            touched.append(_check_table(node, readable, ctes, default_schema))
        elif kind == "TABLE_FUNCTION":
            function = node.get("function") or {}
            name = str(function.get("function_name", "")).lower()
            if name not in ALLOWED_TABLE_FUNCTIONS | METADATA_FUNCTIONS:
                raise QueryRejected(
                    f"table function {name}() is not allowed (it reads files, settings or the catalog); "
                    f"allowed: {', '.join(sorted(ALLOWED_TABLE_FUNCTIONS))}"
                )
        if node.get("class") == "FUNCTION" or kind == "FUNCTION":
            name = str(node.get("function_name", "")).lower()
            if DENIED_FUNCTION.match(name) and name not in METADATA_FUNCTIONS:
                raise QueryRejected(
                    f"function {name}() is not allowed: it reaches outside the published data"
                )
    return CheckedQuery(sql=sql, tables=tuple(sorted({t for t in touched if t})))


def _check_table(node: dict, readable: set[str], ctes: set[str], default_schema: str) -> str | None:
    catalog = node.get("catalog_name") or ""
    schema = (node.get("schema_name") or "").lower()
    table = node.get("table_name") or ""
    shown = ".".join(p for p in (catalog, schema, table) if p)
    if not catalog and not schema and table in ctes:
        return None
    if any(c in table for c in "/\\") or re.search(
        r"\.(csv|tsv|parquet|json|jsonl|ndjson|txt|gz|zst)$", table, re.I
    ):
        raise QueryRejected(f"reading files is not allowed ({table!r} used as a table)")
    if catalog:
        raise QueryRejected(
            f"{shown}: name tables as schema.table (e.g. pool.<table>), not through a catalog"
        )
    if schema in METADATA_SCHEMAS:
        return None
    qualified = f"{schema or default_schema}.{table}"
    if qualified not in readable:
        raise QueryRejected(
            f"unknown or not granted table {shown}: readable are "
            + (", ".join(sorted(readable)) if len(readable) < 40 else f"{len(readable)} tables")
        )
    return qualified


def _cte_names(tree) -> Iterable[str]:
    for node in _walk(tree):
        cte_map = node.get("cte_map")
        if isinstance(cte_map, dict):
            for entry in cte_map.get("map") or []:
                yield entry.get("key")


def _walk(value):
    if isinstance(value, dict):
        yield value
        for child in value.values():
            yield from _walk(child)
    elif isinstance(value, list):
        for child in value:
            yield from _walk(child)


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0]
