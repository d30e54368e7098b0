"""Reading a delivered CSV block by block: the plain lines as whole Arrow columns, the others one by one.

Why: a city's registry has millions of records, and a Python loop over each (the csv module, per-value
checks, re-encoding every record for evidence) was most of the night's ingestion (issue 20). Nearly
every line of a real delivery is plain: no quote character, exactly the header's number of delimiters,
no undecodable byte. Arrow splits those into columns in one pass per block (a few tens of MiB of the
file, so memory stays bounded whatever the delivery's size). Every other line is *special* and read
record by record by ``_Reader.exact``, the same rules as a record-by-record read: undecodable bytes, a
quote (a record may go on over several lines), another number of fields, a trailing delimiter, a blank
line, a UTF-8 record in a GB18030 file, the header again. Row numbers count the records of the file in
order whichever way they were read, and the quarantine keeps each record's delivered text. The value rules
(NUL/BOM, formulas, size, blank keys) are pre-filtered in Arrow and confirmed in Python on the flagged rows
(``BatchBuilder.add_columns``).
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from citybrain.catalog import Feed, FileDelivery
from citybrain.ingest import reasons
from citybrain.ingest.batch import Batch, BatchBuilder, DeliveryError

if TYPE_CHECKING:
    import pyarrow as pa

# Bytes of the file read (and decoded) at a time; a block ends at a line end.
BLOCK_BYTES = 32 << 20
# A line longer than this may hold a field over the csv module's limit: it is read by the exact path,
# which fails the file as before.
CSV_FIELD_LIMIT = 64 * 1024 * 1024
csv.field_size_limit(CSV_FIELD_LIMIT)
_UNDECODABLE = re.compile("[\udc80-\udcff]")


def _is_ascii_compatible(encoding: str) -> bool:
    """A newline byte is a newline in this encoding (not so in UTF-16), so blocks may end at one."""
    try:
        return "\n,a".encode(encoding) == b"\n,a"
    except (LookupError, UnicodeError):
        return False


def byte_blocks(delivery: FileDelivery, path: Path, source: str, block_bytes: int) -> Iterator[bytes]:
    """The (decompressed) bytes of the file in blocks that end at a newline byte (the last may not)."""
    if path.stat().st_size == 0:
        raise DeliveryError(source, "empty file (0 bytes)")
    whole = not _is_ascii_compatible(delivery.encoding)
    gzipped = delivery.compression == "gzip"
    opener = gzip.open if delivery.compression == "gzip" else open
    carry = b""
    seen = 0
    try:
        with opener(path, "rb") as stream:
            while True:
                data = stream.read(block_bytes)
                if not data:
                    break
                seen += len(data)
                data = carry + data
                cut = -1 if whole else data.rfind(b"\n")
                if cut < 0:
                    carry = data
                    continue
                carry = data[cut + 1 :]
                yield data[: cut + 1]
    except (OSError, EOFError, zlib.error) as exc:
        if not gzipped:
            raise
        raise DeliveryError(source, f"not a complete gzip file ({exc})") from None
    if not seen:
        raise DeliveryError(source, "empty file (gzip holds 0 bytes)")
    if carry:
        yield carry


class _Reader:
    """The state of one CSV read: the builder, the record count and the counts for warnings."""

    def __init__(self, feed: Feed, delivery: FileDelivery, source: str, encoding: str, gb: bool):
        self.feed = feed
        self.delivery = delivery
        self.source = source
        self.encoding = encoding
        self.gb = gb
        self.builder = BatchBuilder(source, feed.column_names, feed.key)
        self.row_number = 0
        self.undecodable = 0
        self.trailing_delimiter = 0
        self.width = 0
        self.positions: list[int] = []
        self.cleaned_header: list[str] = []

    def header(self, header: list[str], check_header) -> None:
        self.positions = check_header(self.feed, header, self.source, self.builder.warnings)
        self.cleaned_header = [h.strip().lstrip("\ufeff") for h in header]
        self.width = len(header)

    def exact(self, row_number: int, record: list[str], raw: str, utf8_evidence) -> None:
        """One record by the rules, in their order (a record-by-record read of the file does exactly this)."""
        from citybrain.ingest.file_readers import UTF8_EVIDENCE_CHARS, _escaped

        width = self.width
        builder = self.builder
        if len(record) == width + 1 and record[-1] == "" and width > 1:
            record = record[:-1]  # a trailing delimiter: the extra field is empty, nothing is dropped
            self.trailing_delimiter += 1
        if _UNDECODABLE.search(raw) is not None:
            self.undecodable += 1
            builder.quarantine(
                row_number,
                _escaped(raw, self.encoding),
                reasons.UNDECODABLE_BYTES,
                f"bytes not valid {self.delivery.encoding}",
            )
        elif self.gb and utf8_evidence(raw.encode(self.encoding)) >= UTF8_EVIDENCE_CHARS:
            self.undecodable += 1
            builder.quarantine(
                row_number,
                raw,
                reasons.UNDECODABLE_BYTES,
                f"a UTF-8 record in a {self.delivery.encoding} file (decodes only to mojibake)",
            )
        elif (
            len(record) == width
            and record[0].strip().lstrip("\ufeff") == self.cleaned_header[0]
            and [f.strip().lstrip("\ufeff") for f in record] == self.cleaned_header
        ):
            builder.quarantine(
                row_number, raw, reasons.REPEATED_HEADER, "the header again (concatenated files?)"
            )
        elif len(record) != width:
            builder.quarantine(
                row_number, raw, reasons.COLUMN_COUNT_MISMATCH, f"{len(record)} fields, header has {width}"
            )
        else:
            builder.add(row_number, [record[p] for p in self.positions], raw)

    def special_lines(self, lines: list[str], text: str, block: bytes) -> tuple[np.ndarray, pa.Array]:
        """Which lines must be read one by one (a boolean mask), and the lines as an Arrow string array
        (lines with undecodable bytes hold U+FFFD there: they are special anyway)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        n = len(lines)
        special = np.zeros(n, dtype=bool)
        if _UNDECODABLE.search(text) is not None:
            ends = np.cumsum(np.fromiter(map(len, lines), dtype=np.int64, count=n))
            at = np.fromiter((m.start() for m in _UNDECODABLE.finditer(text)), dtype=np.int64)
            special[np.unique(np.searchsorted(ends, at, side="right"))] = True
        utf8 = text.encode("utf-8", "replace")
        array = _line_array(utf8, n)
        if array is None:  # line ends not as readlines sees them (cannot happen): read every line exactly
            return np.ones(n, dtype=bool), pa.array([""] * n)
        delimiter = self.delivery.delimiter
        tests = [pc.not_equal(pc.count_substring(array, delimiter), self.width - 1)]
        if self.width == 1:  # else a blank line has no delimiter and is caught above
            tests.append(pc.equal(pc.utf8_length(pc.utf8_rtrim(array, characters="\r\n")), 0))
        if b'"' in utf8:
            tests.append(pc.match_substring(array, '"'))
        if len(utf8) > CSV_FIELD_LIMIT:
            tests.append(pc.greater(pc.binary_length(array), CSV_FIELD_LIMIT))
        first = self.cleaned_header[0]
        if not first:  # the header again: its first name somewhere in the line
            special[:] = True
        elif first.encode("utf-8") in utf8:
            tests.append(pc.match_substring(array, first))
        for test in tests:
            special |= test.to_numpy(zero_copy_only=False)
        if self.gb:
            special |= _utf8_candidates(block, n)
        return special, array

    def block(self, lines: list[str], text: str, block: bytes, final: bool, utf8_evidence) -> list[str]:
        """Read the records of ``lines``; return the lines of a record that may go on in the next block."""
        import pyarrow as pa

        n = len(lines)
        if n == 0:
            return []
        special, array = self.special_lines(lines, text, block)
        starts = ~special  # lines that begin a record read as a plain line
        exact: list[tuple[int, list[str], str]] = []  # (line, record, raw)
        stop = n
        consumed_until = 0
        delimiter = self.delivery.delimiter
        for s in np.flatnonzero(special):
            if s < consumed_until:
                continue
            reader = csv.reader((lines[j] for j in range(s, n)), delimiter=delimiter, strict=False)
            try:
                record = next(reader, None)
            except csv.Error as exc:
                before = self.row_number + int(starts[:s].sum())
                raise DeliveryError(self.source, f"unreadable CSV after record {before}: {exc}") from None
            used = reader.line_num
            if s + used >= n and not final and _may_continue(lines[s:]):
                stop = s  # the record may go on in the next block: read it there
                break
            consumed_until = s + max(used, 1)
            special[s + 1 : consumed_until] = True
            starts[s + 1 : consumed_until] = False
            if record:  # a blank line is not a record
                starts[s] = True
                exact.append((s, record, "".join(lines[s:consumed_until])))
        starts[stop:] = False
        numbers = self.row_number + np.cumsum(starts)
        if stop > 0:
            self.row_number = int(numbers[stop - 1])
        for s, record, raw in exact:
            self.exact(int(numbers[s]), record, raw, utf8_evidence)
        plain = np.flatnonzero(~special[:stop])
        if len(plain):
            plain_lines = array.take(pa.array(plain))
            fields = self._split(plain_lines, len(plain))
            self.builder.add_columns(
                [fields[p] for p in self.positions],
                numbers[plain],
                lambda i: lines[plain[i]],
                suspects=self._suspects(plain_lines, fields),
            )
        return lines[stop:]

    def _split(self, plain_lines: pa.Array, n: int) -> list[pa.Array]:
        """The fields of lines that hold no quote and exactly the header's number of fields, by Arrow's
        CSV reader (quoting off: nothing in these lines is quoted)."""
        import pyarrow as pa
        import pyarrow.csv as pacsv

        buffers = plain_lines.buffers()
        kind = np.int64 if pa.types.is_large_string(plain_lines.type) else np.int32
        offsets = np.frombuffer(buffers[1], dtype=kind)[plain_lines.offset : plain_lines.offset + n + 1]
        first, last = int(offsets[0]), int(offsets[-1])
        data = buffers[2][first:last] if last > first else pa.py_buffer(b"")
        names = [f"c{i}" for i in range(self.width)]
        table = pacsv.read_csv(
            pa.BufferReader(data),
            read_options=pacsv.ReadOptions(column_names=names, block_size=max(1 << 20, len(data) // 2 + 1)),
            parse_options=pacsv.ParseOptions(
                delimiter=self.delivery.delimiter,
                quote_char=False,
                escape_char=False,
                newlines_in_values=False,
                ignore_empty_lines=False,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        if table.num_rows != n:
            raise AssertionError(f"{self.source}: Arrow read {table.num_rows} of {n} plain lines")
        return [table.column(i).combine_chunks() for i in range(self.width)]

    def _suspects(self, plain_lines: pa.Array, fields: list[pa.Array]) -> np.ndarray:
        """A superset of the rows that break a value rule, tested on whole lines (one pass, not one per
        column) and on the key columns; see vector_checks for why a superset."""
        import pyarrow.compute as pc

        from citybrain.ingest.batch import MAX_FIELD_CHARS
        from citybrain.ingest.vector_checks import NO_LETTER_OR_DIGIT

        d = f"\\x{{{ord(self.delivery.delimiter):x}}}"
        tests = [
            pc.match_substring_regex(plain_lines, f"(?:^|{d})[^\\p{{L}}\\p{{N}}{d}]*[=+@\\-]"),
            pc.match_substring(plain_lines, "\x00"),
            pc.match_substring(plain_lines, "\ufeff"),
            pc.greater(pc.utf8_length(plain_lines), MAX_FIELD_CHARS),
        ]
        for k in self.feed.key:
            tests.append(
                pc.match_substring_regex(
                    fields[self.positions[self.feed.column_names.index(k)]], NO_LETTER_OR_DIGIT
                )
            )
        flagged = tests[0]
        for test in tests[1:]:
            flagged = pc.or_(flagged, test)
        return pc.fill_null(flagged, False).to_numpy(zero_copy_only=False)


def _line_array(utf8: bytes, n: int) -> pa.Array | None:
    """The lines of UTF-8 text as an Arrow string array without one Python object per line: a line ends
    at \\n, at \\r\\n or at a lone \\r (as ``readlines(newline="")`` splits them); None if that does
    not give ``n`` lines."""
    import pyarrow as pa

    b = np.frombuffer(utf8, dtype=np.uint8)
    lf = b == 10
    cr = b == 13
    lone_cr = cr.copy()
    lone_cr[:-1] &= ~lf[1:]
    ends = np.flatnonzero(lf | lone_cr) + 1
    if len(ends) == 0 or ends[-1] != len(b):
        ends = np.append(ends, len(b))
    if len(b) == 0:
        ends = ends[:0]
    if len(ends) != n:
        return None
    large = len(b) >= 2**31 - 1
    offsets = np.concatenate([[0], ends]).astype(np.int64 if large else np.int32)
    kind = pa.large_string() if large else pa.string()
    return pa.Array.from_buffers(kind, n, [None, pa.py_buffer(offsets), pa.py_buffer(utf8)])


def _utf8_candidates(block: bytes, n: int) -> np.ndarray:
    """Lines of a GB18030 block that may be UTF-8 text with 3 or more non-ASCII characters: a superset, the
    exact rule runs on them. In valid UTF-8 a byte >= 0xC0 (one starts each non-ASCII character) is
    followed by a continuation byte (0x80-0xBF), and a continuation byte follows one of those two kinds; a
    line with either broken, or with fewer than 3 bytes >= 0xC0, is not a candidate."""
    b = np.frombuffer(block, dtype=np.uint8)
    if len(b) == 0:
        return np.zeros(n, dtype=bool)
    lf = b == 10
    lone_cr = b == 13
    lone_cr[:-1] &= ~lf[1:]
    ends = np.flatnonzero(lf | lone_cr)  # the last byte of each terminated line
    count = len(ends) + (0 if (len(ends) and ends[-1] == len(b) - 1) else 1)
    if count != n:
        return np.ones(n, dtype=bool)
    lead = b >= 0xC0
    cont = (b & 0xC0) == 0x80
    broken = np.zeros(len(b), dtype=bool)
    broken[:-1] |= lead[:-1] & ~cont[1:]  # a lead byte not followed by a continuation
    broken[-1] |= lead[-1]
    broken[1:] |= cont[1:] & ~(lead[:-1] | cont[:-1])  # a continuation after neither
    broken[0] |= cont[0]
    line_of = lambda positions: np.searchsorted(ends, positions, side="left")  # noqa: E731
    leads = np.bincount(line_of(np.flatnonzero(lead)), minlength=n)[:n]
    bad = np.zeros(n, dtype=bool)
    bad[line_of(np.flatnonzero(broken))] = True
    return (leads >= 3) & ~bad


def _may_continue(lines: list[str]) -> bool:
    """A record read to the end of a block may go on in the next one only if a quote opened it."""
    return any('"' in line for line in lines)


def read_csv(
    feed: Feed, delivery: FileDelivery, path: Path, source: str, check_header, utf8_evidence, is_gb
) -> Batch:
    """Read a delivered CSV (see the module's docstring). ``check_header``, ``utf8_evidence`` and
    ``is_gb`` are the file readers' own rules, passed in so they have one home."""
    from citybrain.ingest.file_readers import UTF8_EVIDENCE_CHARS, WRONG_ENCODING_SHARE

    blocks = byte_blocks(delivery, path, source, BLOCK_BYTES)
    first = next(blocks)
    encoding = delivery.encoding
    if encoding.replace("_", "-").lower() in ("utf-8", "utf8") and first.startswith(b"\xef\xbb\xbf"):
        encoding = "utf-8-sig"
    gb = is_gb(encoding)
    if gb:
        if _utf8_evidence_of_file(_chain(first, blocks)) >= UTF8_EVIDENCE_CHARS:
            raise DeliveryError(
                source,
                f"declared {delivery.encoding} but the file is valid UTF-8 with non-ASCII text: wrong "
                "encoding (it would load as mojibake)",
            )
        blocks = byte_blocks(delivery, path, source, BLOCK_BYTES)  # read again from the start
    else:
        blocks = _chain(first, blocks)
    decoder = codecs.getincrementaldecoder(encoding)(errors="surrogateescape")
    reader = _Reader(feed, delivery, source, encoding, gb)
    carry: list[str] = []
    carry_bytes = b""
    started = False
    for block, final in _with_last(blocks):
        text = decoder.decode(block, final=final)
        lines = io.StringIO(text, newline="").readlines()
        if not started:
            started = True
            header_reader = csv.reader(iter(lines), delimiter=delivery.delimiter, strict=False)
            try:
                header = next(header_reader)
            except StopIteration:
                raise DeliveryError(source, "no header row") from None
            if _UNDECODABLE.search("".join(header)):
                raise DeliveryError(source, f"header does not decode as {delivery.encoding}: wrong encoding?")
            reader.header(header, check_header)
            skipped = header_reader.line_num
            skipped_bytes = "".join(lines[:skipped]).encode(encoding, "surrogateescape") if gb else b""
            lines = lines[skipped:]
            text = "".join(lines)
            block = block[len(skipped_bytes) :] if gb else block
        if carry:
            lines = carry + lines
            text = "".join(carry) + text
            block = carry_bytes + block
        carry = reader.block(lines, text, block, final, utf8_evidence)
        carry_bytes = "".join(carry).encode(encoding, "surrogateescape") if (carry and gb) else b""
    if not started:
        raise DeliveryError(source, "no header row")
    if reader.row_number and reader.undecodable > WRONG_ENCODING_SHARE * reader.row_number:
        raise DeliveryError(
            source,
            f"{reader.undecodable} of {reader.row_number} records do not decode as {delivery.encoding}: "
            "wrong encoding?",
        )
    if reader.trailing_delimiter:
        reader.builder.warnings.append(
            f"{reader.trailing_delimiter} records end with a trailing delimiter (empty field dropped)"
        )
    return reader.builder.build()


def _utf8_evidence_of_file(blocks: Iterator[bytes]) -> int:
    """Non-ASCII characters of the whole file if it is strictly valid UTF-8, else 0. Stops reading at the
    first byte that is not UTF-8: in a GB18030 file, within its first Chinese text."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    count = 0
    try:
        for block in blocks:
            text = decoder.decode(block)
            count += len(text) - len(text.encode("ascii", "ignore"))
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return 0
    return count


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def _with_last(blocks: Iterator[bytes]) -> Iterator[tuple[bytes, bool]]:
    """Each block with whether it is the last one."""
    previous = next(blocks, None)
    if previous is None:
        return
    for block in blocks:
        yield previous, False
        previous = block
    yield previous, True
