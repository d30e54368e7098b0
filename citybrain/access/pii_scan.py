"""Scan published tables for personal data that must never be open: a last check on the masking.

What it looks for, in every text column of every table of a tier file:

* a valid resident ID number (GB 11643, 18 characters; validity — checksum and birth date — decided by
  python-stdnum, so random digit runs are not reported);
* a mainland mobile number: ``1[3-9]`` and 9 more digits, not inside a longer run of digits or Latin letters
  (hex pseudonyms, H3 cells); a ``+86`` prefix and spaces or dashes inside are tolerated;
* a person's name from the household registry: a cell equal to a registered name, or free text containing
  a registered name of three or more characters (two-character names occur inside ordinary words);
* a home address: a dwelling written down to building and unit or room (``3幢2单元501室``, ``7栋1102室``).
  A house number alone is not reported: hospitals and schools are published with theirs.

Used by the tests on a real published demo lake and usable by an operator on any tier file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
from stdnum.cn import ric

from citybrain.warehouse import Warehouse

DIGIT_RUN = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9A-Za-z])")
MOBILE = re.compile(r"(?<![0-9A-Za-z])(?:\+?86)?(1[3-9][0-9]{9})(?![0-9A-Za-z])")
SEPARATOR_IN_NUMBER = re.compile(r"(?<=[0-9])[ \-](?=[0-9])")
MIN_CONTAINED_NAME = 3
# A dwelling: building then unit or room (Arabic or Chinese numerals).
DWELLING = r"[0-9一二三四五六七八九十]+(幢|栋|号楼|座)[0-9一二三四五六七八九十]*(单元)?[0-9]+(室|户)?|[0-9]+单元[0-9]+室?"


@dataclass(frozen=True)
class Finding:
    table: str
    column: str
    kind: str  # resident_id | mobile | registry_name | dwelling
    value: str  # the offending cell (truncated)
    match: str

    def __str__(self) -> str:
        return f"{self.table}.{self.column}: {self.kind} {self.match!r} in {self.value!r}"


def registry_names(warehouse: Path) -> list[str]:
    """Every distinct name in the raw household registry (the warehouse holds it; it is restricted)."""
    with Warehouse.from_settings(warehouse).connect(read_only=True) as con:
        rows = con.execute(
            "SELECT DISTINCT trim(name) FROM raw.household_registry WHERE nullif(trim(name), '') IS NOT NULL"
        ).fetchall()
    return sorted(name for (name,) in rows)


def scan_tier_file(path: Path, names: Iterable[str], schema: str = "pool", limit: int = 20) -> list[Finding]:
    """Findings in every VARCHAR column of ``schema`` in the DuckDB file ``path`` (opened read-only)."""
    names = sorted({n for n in names if n})
    findings: list[Finding] = []
    with duckdb.connect(str(path), read_only=True) as con:
        con.register("registry_names", pa.table({"name": pa.array(names, pa.string())}))
        columns = con.execute(
            "SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = current_database() "
            "AND schema_name = ? AND data_type = 'VARCHAR' ORDER BY table_name, column_index",
            [schema],
        ).fetchall()
        for table, column in columns:
            cells = f'SELECT DISTINCT "{column}" AS v FROM "{schema}"."{table}" WHERE "{column}" IS NOT NULL'
            for (value,) in con.execute(
                f"SELECT v FROM ({cells}) WHERE regexp_matches(v, '[0-9][0-9 \\-]{{9,}}[0-9Xx]')"
            ).fetchall():
                findings.extend(_numbers(f"{schema}.{table}", column, value))
            for value, name in con.execute(
                f"SELECT c.v, n.name FROM ({cells}) AS c JOIN registry_names AS n "
                f"ON c.v = n.name OR (length(n.name) >= {MIN_CONTAINED_NAME} AND contains(c.v, n.name)) "
                "ORDER BY 1 LIMIT ?",
                [limit],
            ).fetchall():
                findings.append(Finding(f"{schema}.{table}", column, "registry_name", value[:80], name))
            for value, match in con.execute(
                f"SELECT v, regexp_extract(v, ?) FROM ({cells}) WHERE regexp_matches(v, ?) ORDER BY 1 LIMIT ?",
                [DWELLING, DWELLING, limit],
            ).fetchall():
                findings.append(Finding(f"{schema}.{table}", column, "dwelling", value[:80], match))
    return findings


def _numbers(table: str, column: str, value: str) -> list[Finding]:
    found = []
    compact = SEPARATOR_IN_NUMBER.sub("", value)
    for match in DIGIT_RUN.finditer(compact):
        if ric.is_valid(match.group()):
            found.append(Finding(table, column, "resident_id", value[:80], match.group()))
    for match in MOBILE.finditer(compact):
        found.append(Finding(table, column, "mobile", value[:80], match.group(1)))
    return found
