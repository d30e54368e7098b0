"""The registry's person names: the free-text scrubber's dictionary, read from the warehouse it runs in.

The warehouse knows every resident's name (and every legal representative's and insured person's): each raw
column the catalog declares ``pii: person_name``. Looking a name up there finds names no segmenter would
guess, and the dictionary grows with the registry without a list to maintain. A raw table not loaded yet
is skipped, so a fresh warehouse gives an empty dictionary, not an error.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def person_name_columns() -> list[tuple[str, str]]:
    """(raw table, column) of every catalog column with ``pii: person_name``."""
    from citybrain.catalog import load_catalog

    return [
        (feed.id, c.name) for feed in load_catalog().feeds for c in feed.columns if c.pii == "person_name"
    ]


def registry_names(con, columns: list[tuple[str, str]] | None = None) -> list[str]:
    """Distinct, trimmed names of those columns in the raw schema of ``con``'s database (a DuckDB
    connection or cursor); tables that do not exist are skipped."""
    columns = person_name_columns() if columns is None else columns
    present = {
        (t, c)
        for t, c in con.execute(
            "SELECT table_name, column_name FROM duckdb_columns() "
            "WHERE database_name = current_database() AND schema_name = 'raw'"
        ).fetchall()
    }
    selects = [
        f'SELECT trim("{c}") AS name FROM raw."{t}" WHERE nullif(trim("{c}"), \'\') IS NOT NULL'
        for t, c in columns
        if (t, c) in present
    ]
    if not selects:
        log.warning("no registry names in the warehouse: the scrubber finds names with jieba alone")
        return []
    rows = con.execute(f"SELECT DISTINCT name FROM ({' UNION ALL '.join(selects)})").fetchall()
    return sorted(name for (name,) in rows)
