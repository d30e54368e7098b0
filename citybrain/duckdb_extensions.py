"""DuckDB extensions from their PyPI packages: never downloaded at run time.

DuckDB's wheel ships parquet, json and icu; the readers beyond them (the ``excel`` reader, the
``sqlite_scanner`` / ``postgres_scanner`` / ``mysql_scanner`` database scanners, the ``encodings`` CSV
decoder) are extensions that DuckDB would fetch from its own server on first use. A city's machine may
not reach that server, and a download in the middle of a night (or a timed benchmark) is not work anyone
asked for; their signed binaries are published on PyPI as ``duckdb-extension-<name>`` (pinned in
pyproject.toml: ``sqlite_scanner`` for the ingestion of SQLite department tables, the others in the dev
extra for bench/city_scale.py's floor), so the file is loaded from the installed package with auto-install
off. A package not installed, or a binary that does not load, is ``None``: the caller reads another way.

A package lays out its binary as ``duckdb_extension_<name>/extensions/v<duckdb version>/<name>.duckdb_extension``.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import duckdb

# The connection settings that make a missing extension an error instead of a download.
NO_DOWNLOAD = {"autoinstall_known_extensions": "false", "autoload_known_extensions": "false"}


def extension_file(name: str) -> Path | None:
    """The installed ``.duckdb_extension`` of ``name`` for this DuckDB version, or None."""
    spec = importlib.util.find_spec(f"duckdb_extension_{name}")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations)))
    path = root / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    return path if path.is_file() else None


def load(con: duckdb.DuckDBPyConnection, name: str) -> float | None:
    """Load extension ``name`` from its PyPI package into ``con``; the seconds it took, or None when the
    package is not installed or the binary does not load (the caller falls back and says so)."""
    path = extension_file(name)
    if path is None:
        return None
    started = time.monotonic()
    try:
        con.execute(f"LOAD '{path}'")
    except duckdb.Error:
        return None
    return time.monotonic() - started
