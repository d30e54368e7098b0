"""A delivery turned into text rows plus quarantined rows, ready to be written in one transaction.

Every reader (CSV, JSON Lines, Excel, Parquet, SQL, HTTP) feeds a ``BatchBuilder`` so the rules that
must hold for every feed live in one place: every value is text, a row whose key is blank is
quarantined, and received = loaded + quarantined by construction.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from citybrain.ingest import reasons

if TYPE_CHECKING:  # pyarrow is imported when a batch is built, not at definitions load
    import pyarrow as pa

# A value longer than this is not a field of a department register but a broken or hostile delivery.
MAX_FIELD_CHARS = 1 << 20
# Text a spreadsheet would run as a formula if an export of it were opened (=HYPERLINK(..), +cmd|.., @SUM(..)).
# A leading sign followed by a number (-2.5, +86 138...) is data and does not match.
FORMULA_LIKE = re.compile(r"^\s*(=|[+\-@]\s*[A-Za-z_][\w.]*\s*[(|!])")
_ANY_FORMULA_LIKE = re.compile(r"(?:^|\x1f)\s*(=|[+\-@]\s*[A-Za-z_][\w.]*\s*[(|!])")


class DuplicateKeys(dict):
    """A parsed JSON object that named at least one key twice (json keeps the last value silently)."""

    duplicates: list[str]


def object_pairs(pairs: list[tuple[str, object]]) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        counts = Counter(k for k, _ in pairs)
        obj = DuplicateKeys(obj)
        obj.duplicates = sorted(k for k, n in counts.items() if n > 1)
    return obj


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


def _value_problem(values: list[str | None]) -> tuple[int, str, str] | None:
    """(column index, reason, detail) of the first value that must not be loaded, if any."""
    joined = "\x1f".join(v for v in values if v)
    if len(joined) > MAX_FIELD_CHARS:
        for i, v in enumerate(values):
            if v and len(v) > MAX_FIELD_CHARS:
                return i, reasons.FIELD_TOO_LARGE, f"{len(v):,} characters, limit {MAX_FIELD_CHARS:,}"
    if "\x00" in joined or "\ufeff" in joined:
        for i, v in enumerate(values):
            if v and ("\x00" in v or "\ufeff" in v):
                what = "a NUL character" if "\x00" in v else "a byte-order mark (U+FEFF) inside the data"
                return i, reasons.INVALID_CHARACTERS, what
    if _ANY_FORMULA_LIKE.search(joined):
        for i, v in enumerate(values):
            if v and FORMULA_LIKE.match(v):
                return i, reasons.FORMULA, f"text a spreadsheet would run as a formula: {v[:60]!r}"
    return None


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
        problem = _value_problem(values)
        if problem is not None:
            column = self.columns[problem[0]] if problem[0] < len(self.columns) else f"#{problem[0] + 1}"
            self.quarantine(row_number, raw_text, problem[1], f"column {column!r}: {problem[2]}")
            return
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
        import pyarrow as pa

        arrays = [pa.array(v, type=pa.string()) for v in self._values]
        arrays.append(pa.array(self._row_numbers, type=pa.int64()))
        table = pa.Table.from_arrays(arrays, names=[*self.columns, "_row_number"])
        return Batch(self.source, self.columns, table, self.quarantined, self.warnings)
