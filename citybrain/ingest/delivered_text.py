"""Rules on the text of delivered files that more than one reader applies: encodings and headers.

Kept apart from the readers so that the CSV reader (csv_reader) and the others (file_readers) share one
home for each rule.
"""

from __future__ import annotations

import re
from collections import Counter

from citybrain.catalog import Feed
from citybrain.ingest.batch import DeliveryError

# A file where more than this share of records fails to decode is in the wrong encoding, not damaged.
WRONG_ENCODING_SHARE = 0.5
# Encodings in which UTF-8 bytes still decode, to mojibake: for these the file is checked for being UTF-8.
GB_ENCODINGS = {"gb18030", "gbk", "gb2312", "cp936"}
# Non-ASCII characters a text must hold, decoded strictly as UTF-8, to count as UTF-8 rather than GB18030:
# GB18030 Chinese text practically never forms valid UTF-8 over several characters (one 女 = C5 AE does).
UTF8_EVIDENCE_CHARS = 3


def short(items: list, limit: int = 10) -> str:
    """A list for a message: long headers (thousands of columns) must not make megabyte log lines."""
    if len(items) <= limit:
        return repr(items)
    return repr(items[:limit])[:-1] + f", ... ({len(items):,} in all)]"


def is_gb(encoding: str) -> bool:
    return encoding.replace("_", "").replace("-", "").lower() in GB_ENCODINGS


def utf8_evidence(data: bytes) -> int:
    """Non-ASCII characters in ``data`` if it is strictly valid UTF-8, else 0."""
    if data.isascii():
        return 0
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return 0
    return len(_NON_ASCII.findall(text))


def escaped(text: str, encoding: str) -> str:
    """Show undecodable bytes as \\xNN so the quarantine row keeps them without being invalid text."""
    return text.encode(encoding, "surrogateescape").decode(encoding, "backslashreplace")


# Bytes that did not decode, as surrogateescape shows them (lone surrogates U+DC80..U+DCFF). Regular
# expressions, not a loop over characters: these run on every record of every delivery.
UNDECODABLE = re.compile("[\udc80-\udcff]")
_NON_ASCII = re.compile("[^\x00-\x7f]")


def has_undecodable(text: str) -> bool:
    return UNDECODABLE.search(text) is not None


def check_header(feed: Feed, header: list[str], source: str, warnings: list[str]) -> list[int]:
    """Map the catalog columns to positions in the delivered header; missing columns are fatal.

    A column delivered in another case (ID_NUMBER) is the same column, with a warning; extra columns are
    ignored with a warning."""
    cleaned = [h.strip().lstrip("\ufeff") for h in header]
    duplicated = sorted(h for h, n in Counter(cleaned).items() if n > 1)
    if duplicated:
        raise DeliveryError(source, f"duplicated header columns {short(duplicated)}")
    exact = {h: i for i, h in enumerate(cleaned)}
    folded: dict[str, list[int]] = {}
    for i, h in enumerate(cleaned):
        folded.setdefault(h.casefold(), []).append(i)
    positions, missing, recased = [], [], []
    for c in feed.column_names:
        if c in exact:
            positions.append(exact[c])
        elif len(folded.get(c.casefold(), [])) == 1:
            positions.append(folded[c.casefold()][0])
            recased.append(cleaned[positions[-1]])
        else:
            missing.append(c)
    if missing:
        raise DeliveryError(source, f"missing columns {missing}; header has {short(cleaned)}")
    if recased:
        warnings.append(f"header columns in another case read as the catalog's: {short(recased)}")
    used = set(positions)
    extra = [h for i, h in enumerate(cleaned) if i not in used and h]
    if extra:
        warnings.append(f"ignored columns not in the catalog: {short(extra)}")
    return positions
