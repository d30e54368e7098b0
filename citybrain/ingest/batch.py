"""A delivery turned into text rows plus quarantined rows, ready to be written in one transaction.

Every reader (CSV, JSON Lines, Excel, Parquet, SQL, HTTP) feeds a ``BatchBuilder`` so the rules that
must hold for every feed live in one place: every value is text, a row whose key is blank is
quarantined, and received = loaded + quarantined by construction.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa

from citybrain.ingest import reasons


class DeliveryError(Exception):
    """A file-level problem: the whole delivery is unusable. Names the file and what is wrong."""

    def __init__(self, source: str, problem: str):
        super().__init__(f"{source}: {problem}")
        self.source = source
        self.problem = problem


@dataclass
class QuarantinedRow:
    row_number: int
    raw_text: str
    reason: str
    detail: str


@dataclass
class Batch:
    """The content of one delivery (a file, a database fetch, an API fetch)."""

    source: str
    columns: list[str]
    rows: pa.Table  # the feed's columns as strings plus _row_number
    quarantined: list[QuarantinedRow]
    warnings: list[str] = field(default_factory=list)

    @property
    def rows_loaded(self) -> int:
        return self.rows.num_rows

    @property
    def rows_quarantined(self) -> int:
        return len(self.quarantined)

    @property
    def rows_received(self) -> int:
        return self.rows_loaded + self.rows_quarantined

    def quarantined_by_reason(self) -> dict[str, int]:
        return dict(sorted(Counter(q.reason for q in self.quarantined).items()))


def to_text(value: object) -> str | None:
    """Render a source value as text without losing what the department wrote."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    isoformat = getattr(value, "isoformat", None)
    if isoformat is not None:
        try:
            return isoformat(sep=" ")
        except TypeError:
            return isoformat()
    return str(value)


class BatchBuilder:
    """Collects rows column by column; checks the key of each row as it arrives."""

    def __init__(self, source: str, columns: list[str], key: list[str]):
        self.source = source
        self.columns = columns
        self._key_index = [columns.index(k) for k in key]
        self._key = key
        self._values: list[list[str | None]] = [[] for _ in columns]
        self._row_numbers: list[int] = []
        self.quarantined: list[QuarantinedRow] = []
        self.warnings: list[str] = []

    def add(self, row_number: int, values: list[str | None], raw_text: str) -> None:
        for i in self._key_index:
            v = values[i]
            if v is None or not v.strip():
                self.quarantine(
                    row_number, raw_text, reasons.MISSING_KEY, f"key column {self.columns[i]!r} is blank"
                )
                return
        self._row_numbers.append(row_number)
        for column, v in zip(self._values, values, strict=True):
            column.append(v)

    @property
    def rows_added(self) -> int:
        return len(self._row_numbers)

    def quarantine(self, row_number: int, raw_text: str, reason: str, detail: str) -> None:
        assert reason in reasons.ALL, reason
        self.quarantined.append(QuarantinedRow(row_number, raw_text, reason, detail))

    def build(self) -> Batch:
        arrays = [pa.array(v, type=pa.string()) for v in self._values]
        arrays.append(pa.array(self._row_numbers, type=pa.int64()))
        table = pa.Table.from_arrays(arrays, names=[*self.columns, "_row_number"])
        return Batch(self.source, self.columns, table, self.quarantined, self.warnings)
