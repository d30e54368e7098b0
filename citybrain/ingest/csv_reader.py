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
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from citybrain.catalog import Feed, FileDelivery
from citybrain.ingest import reasons
from citybrain.ingest.batch import Batch, BatchBuilder, DeliveryError
from citybrain.ingest.delivered_text import (
    UNDECODABLE,
    UTF8_EVIDENCE_CHARS,
    WRONG_ENCODING_SHARE,
    check_header,
    escaped,
    is_gb,
    utf8_evidence,
)

if TYPE_CHECKING:
    import pyarrow as pa

# Bytes of the file read (and decoded) at a time; a block ends at a line end. A block's work holds about
# twenty times its size at once (the decoded text, its UTF-8, the line offsets, numpy masks, Arrow's fields):
# 4 MiB read a 1M-row registry with 0.4 GB at peak against 0.8 GB at 32 MiB, and faster (3.3 s vs 4.2 s:
# the block's arrays stay in the caches; bench/RESULTS.md, stop 38).
BLOCK_BYTES = 4 << 20
# A line longer than this may hold a field over the csv module's limit: it is read by the exact path,
# which fails the file as before.
CSV_FIELD_LIMIT = 64 * 1024 * 1024
csv.field_size_limit(CSV_FIELD_LIMIT)


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


class _Lines:
    """The lines of a block as UTF-8 bytes and their end offsets; a line is decoded to text only when it
    is read one by one. Undecodable bytes (lone surrogates from ``surrogateescape``) are kept through
    ``surrogatepass``: ED B2/B3 xx, a sequence valid UTF-8 never holds."""

    def __init__(self, utf8: bytes):
        self.utf8 = utf8
        self.ends = _line_ends(utf8)
        self.starts = np.concatenate([[0], self.ends[:-1]]).astype(np.int64)

    def __len__(self) -> int:
        return len(self.ends)

    def __getitem__(self, i: int) -> str:
        return self.utf8[self.starts[i] : self.ends[i]].decode("utf-8", "surrogatepass")

    def text(self, start: int, stop: int) -> str:
        if start >= stop:
            return ""
        return self.utf8[self.starts[start] : self.ends[stop - 1]].decode("utf-8", "surrogatepass")

    def tail(self, start: int) -> bytes:
        return self.utf8[self.starts[start] :] if start < len(self) else b""


def _line_ends(utf8: bytes) -> np.ndarray:
    """End offsets (exclusive) of the lines: a line ends at \n, at \r\n or at a lone \r, as
    ``readlines(newline="")`` and the csv module split them."""
    b = np.frombuffer(utf8, dtype=np.uint8)
    if b"\r" in utf8:
        lone_cr = b == 13
        lone_cr[:-1] &= b[1:] != 10
        ends = np.flatnonzero((b == 10) | lone_cr) + 1
    else:
        ends = np.flatnonzero(b == 10) + 1
    if len(b) and (len(ends) == 0 or ends[-1] != len(b)):
        ends = np.append(ends, len(b))
    return ends.astype(np.int64)


def _undecodable_at(utf8: bytes) -> list[int]:
    """Offsets of undecodable bytes in the UTF-8 of a block (see _Lines)."""
    if b"\xed" not in utf8:  # one memchr: the lead byte of every mark, and of no CJK character
        return []
    found = []
    for mark in (b"\xed\xb2", b"\xed\xb3"):
        i = utf8.find(mark)
        while i >= 0:
            found.append(i)
            i = utf8.find(mark, i + 3)
    return sorted(found)


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

    def header(self, header: list[str]) -> None:
        self.positions = check_header(self.feed, header, self.source, self.builder.warnings)
        self.cleaned_header = [h.strip().lstrip("\ufeff") for h in header]
        self.width = len(header)

    def exact(self, row_number: int, record: list[str], raw: str) -> None:
        """One record by the rules, in their order (a record-by-record read of the file does exactly this)."""
        width = self.width
        builder = self.builder
        if len(record) == width + 1 and record[-1] == "" and width > 1:
            record = record[:-1]  # a trailing delimiter: the extra field is empty, nothing is dropped
            self.trailing_delimiter += 1
        if UNDECODABLE.search(raw) is not None:
            self.undecodable += 1
            builder.quarantine(
                row_number,
                escaped(raw, self.encoding),
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

    def special_lines(self, lines: _Lines, original: bytes) -> tuple[np.ndarray, pa.Array]:
        """Which lines must be read one by one (a boolean mask), and the lines as an Arrow string array
        (without one Python object per line)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        n = len(lines)
        utf8 = lines.utf8
        special = np.zeros(n, dtype=bool)
        at = _undecodable_at(utf8)
        if at:  # those lines are read one by one; Arrow gets '???' there
            special[np.searchsorted(lines.ends, np.array(at), side="right")] = True
            masked = bytearray(utf8)
            for p in at:
                masked[p : p + 3] = b"???"
            utf8 = bytes(masked)
        large = len(utf8) >= 2**31 - 1
        offsets = np.concatenate([[0], lines.ends]).astype(np.int64 if large else np.int32)
        kind = pa.large_string() if large else pa.string()
        array = pa.Array.from_buffers(kind, n, [None, pa.py_buffer(offsets), pa.py_buffer(utf8)])
        tests = [pc.not_equal(pc.count_substring(array, self.delivery.delimiter), self.width - 1)]
        if self.width == 1:  # else a blank line has no delimiter and is caught above
            tests.append(pc.equal(pc.binary_length(pc.utf8_rtrim(array, characters="\r\n")), 0))
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
            special |= _utf8_candidates(original, n)
        return special, array

    def block(self, lines: _Lines, original: bytes, final: bool) -> int:
        """Read the records of ``lines``; return the index of the first line of a record that may go on
        in the next block (``len(lines)`` if none)."""
        import pyarrow as pa

        n = len(lines)
        if n == 0:
            return 0
        special, array = self.special_lines(lines, original)
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
            used = max(reader.line_num, 1)
            if s + used >= n and not final and '"' in lines.text(s, n):
                stop = s  # a quoted record may go on in the next block: read it there
                break
            consumed_until = s + used
            special[s + 1 : consumed_until] = True
            starts[s + 1 : consumed_until] = False
            if record:  # a blank line is not a record
                starts[s] = True
                exact.append((s, record, lines.text(s, consumed_until)))
        starts[stop:] = False
        numbers = self.row_number + np.cumsum(starts)
        if stop > 0:
            self.row_number = int(numbers[stop - 1])
        for s, record, raw in exact:
            self.exact(int(numbers[s]), record, raw)
        plain = np.flatnonzero(~special[:stop])
        if len(plain):
            plain_lines = array.take(pa.array(plain))
            fields = self._split(plain_lines, len(plain))
            self.builder.add_columns(
                [fields[p] for p in self.positions],
                numbers[plain],
                lambda i: lines[int(plain[i])],
                suspects=self._suspects(plain_lines, fields, lines.utf8),
            )
        return stop

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
            # At most two blocks (two cores): a line may cross one block boundary, never two.
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

    def _suspects(self, plain_lines: pa.Array, fields: list[pa.Array], block_utf8: bytes) -> np.ndarray:
        """A superset of the rows that break a value rule, tested on whole lines (one pass, not one per
        column) and on the key columns; see vector_checks for why a superset. A NUL or a BOM is looked
        for line by line only when the block (``block_utf8``, the lines' bytes) holds one at all."""
        import pyarrow.compute as pc

        from citybrain.ingest.batch import MAX_FIELD_CHARS
        from citybrain.ingest.vector_checks import NO_LETTER_OR_DIGIT

        d = f"\\x{{{ord(self.delivery.delimiter):x}}}"
        tests = [
            pc.match_substring_regex(plain_lines, f"(?:^|{d})[^\\p{{L}}\\p{{N}}{d}]*[=+@\\-]"),
            pc.greater(pc.utf8_length(plain_lines), MAX_FIELD_CHARS),
        ]
        for character in ("\x00", "\ufeff"):
            if character.encode("utf-8") in block_utf8:
                tests.append(pc.match_substring(plain_lines, character))
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


def _utf8_candidates(block: bytes, n: int) -> np.ndarray:
    """Lines of a GB18030 block that may be UTF-8 text with 3 or more non-ASCII characters: a superset, the
    exact rule runs on them. In valid UTF-8 each non-ASCII character starts with a byte >= 0xC0 that is
    followed by a continuation byte (0x80-0xBF), and a continuation byte follows one of those two kinds; a
    line with either broken, or with fewer than 3 bytes >= 0xC0, is not a candidate."""
    b = np.frombuffer(block, dtype=np.uint8)
    ends = _line_ends(block)
    if len(ends) != n:  # cannot happen for an ASCII-compatible encoding; stay exact anyway
        return np.ones(n, dtype=bool)
    if n == 0:
        return np.zeros(0, dtype=bool)
    starts = np.concatenate([[0], ends[:-1]])
    lead = b >= 0xC0
    lead_at = np.flatnonzero(lead)
    candidates = np.searchsorted(lead_at, ends) - np.searchsorted(lead_at, starts) >= 3
    if not candidates.any():
        return candidates
    cont = (b & 0xC0) == 0x80
    broken = np.empty(len(b), dtype=bool)
    broken[:-1] = lead[:-1] & ~cont[1:]  # a lead byte not followed by a continuation
    broken[-1] = lead[-1]
    broken[1:] |= cont[1:] & ~(lead[:-1] | cont[:-1])  # a continuation after neither
    broken[0] |= cont[0]
    broken_at = np.flatnonzero(broken)
    if len(broken_at) == 0:
        return candidates
    following = np.searchsorted(broken_at, starts)  # the first broken byte at or after each line start
    clean = (following == len(broken_at)) | (broken_at[np.minimum(following, len(broken_at) - 1)] >= ends)
    return candidates & clean


def read_csv(feed: Feed, delivery: FileDelivery, path: Path, source: str) -> Batch:
    """Read a delivered CSV (see the module's docstring)."""
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
    carry, carry_original = b"", b""
    started = False
    for block, final in _with_last(blocks):
        utf8 = decoder.decode(block, final=final).encode("utf-8", "surrogatepass")
        if not started:
            started = True
            first_lines = _Lines(utf8)
            header_reader = csv.reader(
                (first_lines[j] for j in range(len(first_lines))), delimiter=delivery.delimiter, strict=False
            )
            try:
                header = next(header_reader)
            except StopIteration:
                raise DeliveryError(source, "no header row") from None
            if UNDECODABLE.search("".join(header)):
                raise DeliveryError(source, f"header does not decode as {delivery.encoding}: wrong encoding?")
            reader.header(header)
            skipped = header_reader.line_num
            if gb:
                block = block[len(first_lines.text(0, skipped).encode(encoding, "surrogateescape")) :]
            utf8 = first_lines.tail(skipped)
        lines = _Lines(carry + utf8)
        original = carry_original + block if gb else b""
        stop = reader.block(lines, original, final)
        carry = lines.tail(stop)
        carry_original = lines.text(stop, len(lines)).encode(encoding, "surrogateescape") if gb else b""
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
