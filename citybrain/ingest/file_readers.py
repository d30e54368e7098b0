"""Readers for delivered files: CSV, JSON Lines, Excel and Parquet, every value kept as text.

Row-level problems (a record with the wrong number of fields, undecodable bytes, a line that is not
JSON) are quarantined with the record's raw text; file-level problems (empty, truncated, wrong
encoding, missing columns) raise ``DeliveryError`` and the file is left where it is.
"""

from __future__ import annotations

import gzip
import json
import zipfile
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from citybrain.catalog import Feed, FileDelivery
from citybrain.ingest import reasons
from citybrain.ingest.batch import (
    DUCKDB_ROW_GROUP_ROWS,
    Batch,
    BatchBuilder,
    DeliveryError,
    DuplicateKeys,
    object_pairs,
    to_text,
)
from citybrain.ingest.delivered_text import WRONG_ENCODING_SHARE, check_header

# Rows a reader hands to the builder's vectorized row rules at once (JSON Lines, Parquet): a DuckDB row group.
ROWS_PER_CHUNK = DUCKDB_ROW_GROUP_ROWS
# An .xlsx whose zip entries unpack to more than this is refused before parsing (a zip bomb).
XLSX_MAX_UNCOMPRESSED = 512 << 20


def read_delivery(feed: Feed, path: Path, source: str) -> Batch:
    """Read one delivered file of ``feed``. ``source`` is how the file is named in logs and errors."""
    delivery = feed.delivery
    assert isinstance(delivery, FileDelivery)
    reader = {"csv": _read_csv, "jsonl": _read_jsonl, "xlsx": _read_xlsx, "parquet": _read_parquet}[
        delivery.kind
    ]
    batch = reader(feed, delivery, path, source)
    if batch.rows_received == 0:
        if feed.snapshot == "full":
            raise DeliveryError(
                source, "no records (header only): an empty snapshot would replace the whole current one"
            )
        batch.warnings.append("no records (header only)")
    return batch


def _file_bytes(delivery: FileDelivery, path: Path, source: str) -> bytes:
    data = path.read_bytes()
    if not data:
        raise DeliveryError(source, "empty file (0 bytes)")
    if delivery.compression == "gzip":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise DeliveryError(source, f"not a complete gzip file ({exc})") from None
        if not data:
            raise DeliveryError(source, "empty file (gzip holds 0 bytes)")
    return data


def _read_csv(feed: Feed, delivery: FileDelivery, path: Path, source: str) -> Batch:
    from citybrain.ingest.csv_reader import read_csv

    return read_csv(feed, delivery, path, source)


def loads_json(text: str) -> object:
    """json.loads keeping every value as text and marking objects with duplicate keys."""
    if text.startswith("\ufeff"):  # as json.loads says it
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    return _TEXT_JSON.decode(text)


# One decoder for every line: ``json.loads`` with these options builds a new decoder per call (a fifth of
# the time of a JSON Lines file of short records).
_TEXT_JSON = json.JSONDecoder(
    parse_int=str, parse_float=str, parse_constant=str, object_pairs_hook=object_pairs
)


def _read_jsonl(feed: Feed, delivery: FileDelivery, path: Path, source: str) -> Batch:
    """Each line is parsed by Python's ``json`` (numbers kept as their text, duplicate keys seen); the
    objects' values are gathered column by column and handed to the builder ``ROWS_PER_CHUNK`` at a time,
    so the row rules run vectorized (``BatchBuilder.add_columns``) rather than once per record."""
    data = _file_bytes(delivery, path, source)
    builder = BatchBuilder(source, feed.column_names, feed.key)
    names = feed.column_names
    chunk = _JsonChunk(names)
    seen_columns: set[str] = set()
    lines = data.split(b"\n")
    if lines and lines[0].startswith(b"\xef\xbb\xbf"):
        lines[0] = lines[0][3:]
    undecodable = records = 0
    for line_number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        records += 1
        try:
            text = line.decode(delivery.encoding).rstrip("\r")
        except UnicodeDecodeError as exc:
            undecodable += 1
            raw = line.decode(delivery.encoding, "backslashreplace")
            builder.quarantine(line_number, raw, reasons.UNDECODABLE_BYTES, str(exc))
            continue
        try:
            obj = loads_json(text)
        except json.JSONDecodeError as exc:
            builder.quarantine(line_number, text, reasons.INVALID_JSON, str(exc))
            continue
        except RecursionError:
            builder.quarantine(line_number, text, reasons.INVALID_JSON, "nested too deeply to parse")
            continue
        if not isinstance(obj, dict):
            builder.quarantine(line_number, text, reasons.NOT_A_JSON_OBJECT, f"a JSON {type(obj).__name__}")
            continue
        if isinstance(obj, DuplicateKeys):
            builder.quarantine(
                line_number, text, reasons.DUPLICATE_JSON_KEY, f"keys given twice: {obj.duplicates}"
            )
            continue
        seen_columns.update(obj)
        chunk.add(line_number, obj, text)
        if len(chunk.row_numbers) >= ROWS_PER_CHUNK:
            chunk = chunk.flush(builder)
    chunk.flush(builder)
    if records == 0:
        raise DeliveryError(source, "no records (only blank lines)")
    if undecodable > WRONG_ENCODING_SHARE * records:
        raise DeliveryError(source, f"{undecodable} of {records} lines do not decode as {delivery.encoding}")
    if builder.rows_added:  # a missing column is only visible once some objects parsed
        missing = [c for c in feed.column_names if c not in seen_columns]
        if missing:
            raise DeliveryError(source, f"missing columns {missing}: no record has them")
    return builder.build()


class _JsonChunk:
    """Parsed JSON objects of consecutive lines, as text columns (``to_text``; strings as they are)."""

    def __init__(self, names: list[str]):
        self.names = names
        self.columns: list[list[str | None]] = [[] for _ in names]
        self.row_numbers: list[int] = []
        self.texts: list[str] = []

    def add(self, line_number: int, obj: dict, text: str) -> None:
        for column, name in zip(self.columns, self.names, strict=True):
            value = obj.get(name)
            column.append(value if value is None or value.__class__ is str else to_text(value))
        self.row_numbers.append(line_number)
        self.texts.append(text)

    def flush(self, builder: BatchBuilder) -> _JsonChunk:
        """Hand the rows to ``builder``; a new, empty chunk."""
        import numpy as np

        if self.row_numbers:
            texts = self.texts
            builder.add_columns(
                [pa.array(column, type=pa.string()) for column in self.columns],
                np.array(self.row_numbers, dtype=np.int64),
                lambda i: texts[i],
            )
        return _JsonChunk(self.names)


def _xlsx_cell(value: object) -> object:
    """An array formula is an object in openpyxl; keep its text so it is seen as a formula."""
    text = getattr(value, "text", None)
    return text if isinstance(text, str) and type(value).__name__.endswith("Formula") else value


def _read_xlsx(feed: Feed, delivery: FileDelivery, path: Path, source: str) -> Batch:
    """Formulas are read as their text (``data_only=False``), never evaluated and never replaced by the
    value Excel cached; a row holding one is quarantined (reason ``formula``) by the batch builder."""
    from openpyxl import load_workbook

    if path.stat().st_size == 0:
        raise DeliveryError(source, "empty file (0 bytes)")
    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise DeliveryError(source, f"not a readable .xlsx workbook (not a zip archive: {exc})") from None
    if unpacked > XLSX_MAX_UNCOMPRESSED:
        raise DeliveryError(
            source,
            f"not read: unpacks to {unpacked:,} bytes, over the {XLSX_MAX_UNCOMPRESSED:,}-byte limit (zip bomb?)",
        )
    try:
        workbook = load_workbook(path, read_only=True, data_only=False)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds for a damaged workbook
        raise DeliveryError(source, f"not a readable .xlsx workbook ({type(exc).__name__}: {exc})") from None
    try:
        if delivery.sheet:
            if delivery.sheet not in workbook.sheetnames:
                raise DeliveryError(source, f"no sheet {delivery.sheet!r}; sheets are {workbook.sheetnames}")
            sheet = workbook[delivery.sheet]
        else:
            sheet = workbook.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        header_row = next(rows, None)
        if header_row is None:
            raise DeliveryError(source, "empty sheet: no header row")
        header = ["" if h is None else str(h) for h in header_row]
        while header and not header[-1]:
            header.pop()
        builder = BatchBuilder(source, feed.column_names, feed.key)
        positions = check_header(feed, header, source, builder.warnings)
        for row_number, row in enumerate(rows, start=1):
            if row is None or all(v is None or v == "" for v in row):
                continue
            cells = [to_text(_xlsx_cell(v)) for v in row] + [None] * max(0, len(header) - len(row))
            raw = json.dumps(dict(zip(header, cells, strict=False)), ensure_ascii=False)
            builder.add(row_number, [cells[p] for p in positions], raw)
        return builder.build()
    except DeliveryError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged sheet (bad XML, ...) is a file-level problem
        raise DeliveryError(source, f"unreadable sheet ({type(exc).__name__}: {exc})") from None
    finally:
        workbook.close()


def _read_parquet(feed: Feed, delivery: FileDelivery, path: Path, source: str) -> Batch:
    """Read ``ROWS_PER_CHUNK`` rows at a time (memory bounded by the chunk, not the file); each feed column
    becomes Arrow text (``_parquet_text``) and the chunk goes to the builder's vectorized row rules. A
    quarantined row's raw text is the JSON of its delivered columns, made only for that row."""
    import numpy as np

    if path.stat().st_size == 0:
        raise DeliveryError(source, "empty file (0 bytes)")
    builder = BatchBuilder(source, feed.column_names, feed.key)
    try:
        with pq.ParquetFile(path) as parquet:
            delivered = parquet.schema_arrow.names
            missing = [c for c in feed.column_names if c not in delivered]
            if missing:
                raise DeliveryError(source, f"missing columns {missing}; file has {delivered}")
            first = 1
            for chunk in parquet.iter_batches(batch_size=ROWS_PER_CHUNK):
                builder.add_columns(
                    [_parquet_text(chunk.column(name)) for name in feed.column_names],
                    np.arange(first, first + chunk.num_rows, dtype=np.int64),
                    lambda i, chunk=chunk: json.dumps(
                        {k: to_text(v) for k, v in chunk.slice(i, 1).to_pylist()[0].items()},
                        ensure_ascii=False,
                    ),
                )
                first += chunk.num_rows
    except (pa.ArrowInvalid, OSError) as exc:
        raise DeliveryError(source, f"not a readable Parquet file ({exc})") from None
    return builder.build()


def _parquet_text(column: pa.Array) -> pa.Array:
    """A Parquet column as text by ``to_text``'s rules: Arrow's own cast where it gives the same text
    (strings, integers, booleans), ``to_text`` value by value for floats and dates/times (Arrow writes
    ``1.0`` and pads fractions of seconds, ``to_text`` writes ``1`` and Python's ISO format)."""
    if pa.types.is_floating(column.type) or pa.types.is_temporal(column.type):
        return pa.array([to_text(v) for v in column.to_pylist()], type=pa.string())
    try:
        return column.cast(pa.string())
    except pa.ArrowNotImplementedError:  # lists, structs, maps: JSON text, as from any other reader
        return pa.array([to_text(v) for v in column.to_pylist()], type=pa.string())
