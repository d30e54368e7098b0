"""A delivery turned into text rows plus quarantined rows, ready to be written in one transaction.

Every reader (CSV, JSON Lines, Excel, Parquet, SQL, HTTP) feeds a ``BatchBuilder`` so the rules that
must hold for every feed live in one place: every value is text, a row whose key is blank is
quarantined, and received = loaded + quarantined by construction.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import weakref
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from citybrain import settings
from citybrain.ingest import reasons

if TYPE_CHECKING:  # pyarrow is imported when a batch is built, not at definitions load
    import pyarrow as pa

# Rows a builder keeps in memory (Arrow bytes) before it writes them to a spill file (SpilledRows).
SPILL_BYTES = 16 << 20
# Rows per row group of a DuckDB table (its ``DEFAULT_ROW_GROUP_SIZE``); the spill file's row groups match it.
DUCKDB_ROW_GROUP_ROWS = 122_880
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


class SpilledRows:
    """Rows of a delivery written to a Parquet file as they are read, so that a delivery of any size waits
    on disk, not in memory, until it is written into the warehouse, and DuckDB reads it from there with its
    own reader (``sql_source``), within its memory limit. The file is removed with this object.

    Why Parquet and not Arrow's IPC stream (cheaper to write): DuckDB scans an Arrow stream through
    pyarrow and keeps what it read referenced until the insert ends, so a 10M-row registry held 1.2 GB of
    Arrow buffers beside DuckDB's own (peak 3.5 GB for the insert against 2.3 GB from Parquet; bench/RESULTS.md,
    stop 38). Written plain (no compression, dictionary or statistics): 0.24 s per million registry rows,
    read back as fast as from memory. In row groups of DuckDB's size: DuckDB inserts each Parquet row group
    as a batch, and smaller ones left partial row groups in the table that its next checkpoint merged (0.8 s
    in the next feed's step after the insurance database's 1.2M rows)."""

    def __init__(self, schema: pa.Schema):
        import pyarrow.parquet as pq

        directory = os.environ.get(settings.DUCKDB_TEMP_DIR_ENV) or tempfile.gettempdir()
        Path(directory).mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="citybrain-rows-", suffix=".parquet", dir=directory)
        os.close(fd)
        self.path = Path(name)
        self._removal = weakref.finalize(self, self.path.unlink, missing_ok=True)
        self._writer = pq.ParquetWriter(
            name, schema, compression="none", use_dictionary=False, write_statistics=False
        )
        self._held: pa.Table | None = None  # the rows short of a whole row group, written by the next call
        self.num_rows = 0

    @classmethod
    def adopt(cls, path: Path, num_rows: int) -> SpilledRows:
        """The closed spill file of another process (``citybrain.ingest.read_ahead``), removed with this object."""
        rows = cls.__new__(cls)
        rows.path = path
        rows._removal = weakref.finalize(rows, path.unlink, missing_ok=True)
        rows._writer = None
        rows._held = None
        rows.num_rows = num_rows
        return rows

    def hand_over(self) -> Path:
        """The closed file, no longer removed with this object: another process adopts it."""
        self._removal.detach()
        return self.path

    def write(self, table: pa.Table) -> None:
        """Append rows; they reach the file in row groups of exactly DuckDB's row group size."""
        import pyarrow as pa

        self.num_rows += table.num_rows
        if self._held is not None:
            table = pa.concat_tables([self._held, table])
        whole = table.num_rows - table.num_rows % DUCKDB_ROW_GROUP_ROWS
        if whole:
            self._writer.write_table(table.slice(0, whole), row_group_size=DUCKDB_ROW_GROUP_ROWS)
        self._held = table.slice(whole) if whole < table.num_rows else None

    def close(self) -> None:
        if self._held is not None:
            self._writer.write_table(self._held)
            self._held = None
        self._writer.close()

    def sql_source(self) -> str:
        """What a DuckDB query selects FROM to read the rows, in their order."""
        return "read_parquet('" + str(self.path).replace("'", "''") + "')"

    def read_all(self) -> pa.Table:
        import pyarrow.parquet as pq

        return pq.read_table(self.path)


def release_unused_arrow_memory() -> None:
    """Give back to the system what Arrow's allocator keeps after a delivery is read (about 0.25 GB for a
    10M-row registry, kept by mimalloc for reuse), before DuckDB takes memory to write it."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


@dataclass
class Batch:
    """The content of one delivery (a file, a database fetch, an API fetch)."""

    source: str
    columns: list[str]
    rows: pa.Table | SpilledRows  # the feed's columns as strings plus _row_number (on disk when large)
    quarantined: list[QuarantinedRow]
    warnings: list[str] = field(default_factory=list)

    @property
    def rows_loaded(self) -> int:
        return self.rows.num_rows

    def sql_source(self, con, name: str) -> str:
        """What a query on DuckDB connection ``con`` selects FROM to read the rows: the spill file, or the
        in-memory table registered as ``name`` (the caller unregisters it)."""
        if isinstance(self.rows, SpilledRows):
            return self.rows.sql_source()
        con.register(name, self.rows)
        return name

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
    """Collects rows column by column; checks the key of each row as it arrives.

    ``add`` takes one row; ``add_columns`` takes many as Arrow columns and checks them with a vectorized
    pre-filter, so only the few flagged rows are checked (by the same rules) in Python."""

    def __init__(self, source: str, columns: list[str], key: list[str]):
        self.source = source
        self.columns = columns
        self._key_index = [columns.index(k) for k in key]
        self._key = key
        self._values: list[list[str | None]] = [[] for _ in columns]
        self._row_numbers: list[int] = []
        self._chunks: list[pa.Table] = []
        self._chunk_bytes = 0
        self._rows_in_chunks = 0
        self._spill: SpilledRows | None = None
        self.quarantined: list[QuarantinedRow] = []
        self.warnings: list[str] = []

    def problem(self, values: list[str | None]) -> tuple[str, str] | None:
        """(reason, detail) if the row must be quarantined: a bad value, or a blank key."""
        problem = _value_problem(values)
        if problem is not None:
            column = self.columns[problem[0]] if problem[0] < len(self.columns) else f"#{problem[0] + 1}"
            return problem[1], f"column {column!r}: {problem[2]}"
        for i in self._key_index:
            v = values[i]
            if v is None or not v.strip():
                return reasons.MISSING_KEY, f"key column {self.columns[i]!r} is blank"
        return None

    def add(self, row_number: int, values: list[str | None], raw_text: str) -> None:
        problem = self.problem(values)
        if problem is not None:
            self.quarantine(row_number, raw_text, *problem)
            return
        self._row_numbers.append(row_number)
        for column, v in zip(self._values, values, strict=True):
            column.append(v)

    def add_columns(
        self, columns: list[pa.Array], row_numbers, raw_text: Callable[[int], str], suspects=None
    ) -> None:
        """Add many rows at once: ``columns`` are the feed's columns as Arrow strings, ``row_numbers``
        their row numbers (a numpy array), ``raw_text(i)`` the delivered text of row ``i`` (asked only
        for the rows quarantined). ``suspects``: a numpy mask of the rows that may break a rule, when the
        caller has a cheaper superset than ``vector_checks.suspect_rows``."""
        import numpy as np
        import pyarrow as pa

        from citybrain.ingest.vector_checks import suspect_rows

        n = len(row_numbers)
        if n == 0:
            return
        keep = np.ones(n, dtype=bool)
        if suspects is None:
            suspects = suspect_rows(columns, self._key_index, MAX_FIELD_CHARS)
        for i in np.flatnonzero(suspects):
            problem = self.problem([c[i].as_py() for c in columns])
            if problem is not None:
                self.quarantine(int(row_numbers[i]), raw_text(int(i)), *problem)
                keep[i] = False
        if not keep.all():
            mask = pa.array(keep)
            columns = [c.filter(mask) for c in columns]
            row_numbers = row_numbers[keep]
        arrays = [*columns, pa.array(row_numbers, type=pa.int64())]
        chunk = pa.Table.from_arrays(arrays, names=[*self.columns, "_row_number"])
        pending = self._pending()
        if pending is not None:  # rows added one by one before: merged in row order
            chunk = pa.concat_tables([pending, chunk])
            numbers = chunk.column("_row_number").to_numpy()
            if (np.diff(numbers) < 0).any():
                chunk = chunk.take(pa.array(np.argsort(numbers, kind="stable")))
        self._append(chunk)

    @property
    def rows_added(self) -> int:
        return len(self._row_numbers) + self._rows_in_chunks

    def quarantine(self, row_number: int, raw_text: str, reason: str, detail: str) -> None:
        assert reason in reasons.ALL, reason
        self.quarantined.append(QuarantinedRow(row_number, raw_text, reason, detail))

    def _pending(self) -> pa.Table | None:
        """The rows added one by one since the last chunk, as a table (None if there are none)."""
        import pyarrow as pa

        if not self._row_numbers:
            return None
        arrays = [pa.array(v, type=pa.string()) for v in self._values]
        arrays.append(pa.array(self._row_numbers, type=pa.int64()))
        self._values = [[] for _ in self.columns]
        self._row_numbers = []
        return pa.Table.from_arrays(arrays, names=[*self.columns, "_row_number"])

    def _append(self, chunk: pa.Table) -> None:
        """Keep a chunk of rows; past SPILL_BYTES in memory, the chunks go to the spill file."""
        import pyarrow as pa

        self._chunks.append(chunk)
        self._chunk_bytes += chunk.nbytes
        self._rows_in_chunks += chunk.num_rows
        if self._chunk_bytes > SPILL_BYTES:
            if self._spill is None:
                self._spill = SpilledRows(chunk.schema)
            self._spill.write(pa.concat_tables(self._chunks))  # SpilledRows.write sizes the row groups
            self._chunks, self._chunk_bytes = [], 0

    def build(self) -> Batch:
        """The batch, rows and quarantined rows in the order of their row numbers."""
        import numpy as np
        import pyarrow as pa

        pending = self._pending()
        if pending is not None:
            self._append(pending)
        self.quarantined.sort(key=lambda q: q.row_number)
        if self._spill is not None:
            if self._chunks:
                self._spill.write(pa.concat_tables(self._chunks))
            self._spill.close()
            return Batch(self.source, self.columns, self._spill, self.quarantined, self.warnings)
        schema = pa.schema([*((c, pa.string()) for c in self.columns), ("_row_number", pa.int64())])
        table = pa.concat_tables(self._chunks) if self._chunks else schema.empty_table()
        numbers = table.column("_row_number").to_numpy()
        if len(numbers) > 1 and (np.diff(numbers) < 0).any():  # a reader added rows out of order
            table = table.take(pa.array(np.argsort(numbers, kind="stable")))
        return Batch(self.source, self.columns, table, self.quarantined, self.warnings)
