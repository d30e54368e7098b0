"""DuckDB extensions for the benchmarks, from their PyPI packages: never downloaded at run time.

DuckDB's wheel ships parquet, json and icu; the readers a floor needs beyond them (the ``excel`` reader,
the ``sqlite_scanner`` / ``postgres_scanner`` / ``mysql_scanner`` database scanners, the ``encodings``
CSV decoder) are extensions that DuckDB would fetch from its own server on first use. This machine (and a
city's) may not reach that server, and a download during a timed run is not the floor's work; their signed
binaries are published on PyPI as ``duckdb-extension-<name>`` (pinned in pyproject.toml's dev extra), so
the bench loads the file from the installed package and turns auto-install off.

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
