"""Choosing which records get which defect, and writing raw-layer defects into delivered bytes.

A file's defect budget is ``defect_rate`` x its records, shared evenly among the defect kinds that apply
to it, with at least one of each kind when the rate is positive (so a small test city still exercises
every kind) and none when it is zero. Kinds never share a record: each defective record has exactly one
defect, so the counts per (file, reason) the ingestion must report are exact.

Raw defects change bytes, never the number of records: a record with a missing or extra field is still
one line, an undecodable record keeps its key and its other fields.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from citybrain.ingest import reasons

UNDECODABLE_MARKER = "\x00"  # placed in text, turned into an invalid byte after encoding
INVALID_BYTE = b"\xff"  # never a valid lead byte in GB18030 or UTF-8
CHUNK_ROWS = 200_000  # records rendered at once by ``write_csv``: bounds the text held in memory


def allocate(n_records: int, kinds: list[str], rate: float) -> dict[str, int]:
    """How many records of each kind: ~rate x n in total, >= 1 each when rate > 0, never more than fit."""
    if rate <= 0 or n_records <= 0 or not kinds:
        return dict.fromkeys(kinds, 0)
    each = max(1, int(round(rate * n_records / len(kinds))))
    each = min(each, max(1, n_records // (len(kinds) + 1)))
    return dict.fromkeys(kinds, each)


def pick(
    rng: np.random.Generator, n_records: int, wanted: dict[str, tuple[int, np.ndarray | None]]
) -> dict[str, np.ndarray]:
    """Disjoint sorted record indices per kind; ``wanted`` maps kind -> (count, eligibility mask or None).

    Kinds with an eligibility mask are served first (they have fewer candidates); a kind gets fewer
    records than asked only when not enough eligible ones are left.
    """
    used = np.zeros(n_records, dtype=bool)
    order = sorted(wanted, key=lambda k: (wanted[k][1] is None, list(wanted).index(k)))
    out: dict[str, np.ndarray] = {}
    for kind in order:
        count, eligible = wanted[kind]
        ok = ~used if eligible is None else (~used & eligible)
        candidates = np.flatnonzero(ok)
        take = min(count, len(candidates))
        chosen = (
            np.sort(rng.choice(candidates, take, replace=False)) if take else np.array([], dtype=np.int64)
        )
        used[chosen] = True
        out[kind] = chosen
    return {k: out[k] for k in wanted}


def _render(values: list[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, quoting=csv.QUOTE_MINIMAL, lineterminator="\n").writerow(values)
    return buf.getvalue().rstrip("\n")


def wrong_width(values: list[str], rng: np.random.Generator, split_at: int | None) -> str:
    """The record with one field too many or one too few, still on one line.

    Too many: an unquoted comma inside a text field (``split_at``), else a stray trailing field.
    """
    if rng.random() < 0.5:
        return _render(values[:-1])
    if split_at is not None and len(values[split_at]) >= 2:
        text = values[split_at]
        cut = int(rng.integers(1, len(text)))
        return _render(values[:split_at] + [text[:cut], text[cut:]] + values[split_at + 1 :])
    return _render([*values, values[-1]])


def csv_bytes(
    frame: pd.DataFrame,
    *,
    encoding: str,
    raw: dict[str, np.ndarray],
    rng: np.random.Generator,
    split_column: str | None = None,
    undecodable_column: str | None = None,
) -> bytes:
    """The delivered CSV: header + one line per record, with raw defects written into their records.

    ``raw`` maps a reason code (column_count_mismatch / undecodable_bytes) to record indices;
    missing keys are blanked in ``frame`` by the caller.
    """
    buf = io.BytesIO()
    write_csv(
        buf,
        list(frame.columns),
        len(frame),
        lambda rows: frame.iloc[rows],
        encoding=encoding,
        raw=raw,
        rng=rng,
        split_column=split_column,
        undecodable_column=undecodable_column,
        chunk_rows=max(1, len(frame)),
    )
    return buf.getvalue()


def write_csv(
    out,
    columns: list[str],
    n_records: int,
    records: Callable[[np.ndarray], pd.DataFrame],
    *,
    encoding: str,
    raw: dict[str, np.ndarray],
    rng: np.random.Generator | None,
    split_column: str | None = None,
    undecodable_column: str | None = None,
    chunk_rows: int | None = None,
) -> None:
    """``csv_bytes`` written to a path or binary file ``chunk_rows`` records at a time.

    ``records(positions)`` gives the records at those positions (0-based, as delivered), so a file of
    ten million records never exists as one frame or one string. The defective lines are rendered
    first, in the order ``csv_bytes`` always drew them, so the bytes do not depend on ``chunk_rows``.
    """
    chunk_rows = chunk_rows or CHUNK_ROWS
    defective = _defective_lines(columns, records, raw, rng, split_column, undecodable_column)
    undecodable = len(raw.get(reasons.UNDECODABLE_BYTES, [])) > 0
    # A BOM (utf-8-sig) belongs before the header only; the body is plain UTF-8 then.
    body_encoding = "utf-8" if encoding.lower().replace("_", "-") == "utf-8-sig" else encoding
    handle = open(out, "wb") if isinstance(out, str | Path) else out  # noqa: SIM115 - closed below
    try:
        handle.write((_render(columns) + "\n").encode(encoding))
        for start in range(0, n_records, chunk_rows):
            positions = np.arange(start, min(start + chunk_rows, n_records))
            lines = _plain_lines(records(positions))
            for i in defective.keys() & set(range(positions[0], positions[-1] + 1)):
                lines[i - start] = defective[i]
            data = ("\n".join(lines) + "\n").encode(body_encoding)
            if undecodable:
                data = data.replace(UNDECODABLE_MARKER.encode(body_encoding), INVALID_BYTE)
            handle.write(data)
    finally:
        if handle is not out:
            handle.close()


def _plain_lines(frame: pd.DataFrame) -> list[str]:
    """One CSV line per record (text as delivered: missing values empty), checked to be one line each."""
    frame = _as_text(frame)
    body = frame.to_csv(index=False, header=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    if "\r" in body or UNDECODABLE_MARKER in body:
        raise ValueError("record text must not contain CR or NUL")
    lines = body.split("\n")[:-1]
    if len(lines) != len(frame):
        raise ValueError("a field contains a newline: records would not be one line each")
    return lines


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Every field as text, missing ones empty (categoricals by their values)."""
    frame = frame.astype({c: "str" for c, t in frame.dtypes.items() if isinstance(t, pd.CategoricalDtype)})
    return frame.fillna("").astype(str)


def _defective_lines(
    columns: list[str],
    records: Callable[[np.ndarray], pd.DataFrame],
    raw: dict[str, np.ndarray],
    rng: np.random.Generator | None,
    split_column: str | None,
    undecodable_column: str | None,
) -> dict[int, str]:
    """The lines of records with a raw defect, by position; ``rng`` is drawn reason by reason, row by row."""
    split_at = columns.index(split_column) if split_column else None
    col = columns.index(undecodable_column or columns[-1])
    out: dict[int, str] = {}
    for reason in (reasons.COLUMN_COUNT_MISMATCH, reasons.UNDECODABLE_BYTES):
        rows = np.asarray(raw.get(reason, []), dtype=np.int64)
        if not len(rows):
            continue
        for i, values in zip(rows, _as_text(records(rows)).to_numpy().tolist(), strict=True):
            if reason == reasons.COLUMN_COUNT_MISMATCH:
                out[int(i)] = wrong_width(values, rng, split_at)
            else:
                text = values[col]
                cut = int(rng.integers(0, len(text) + 1))
                values[col] = text[:cut] + UNDECODABLE_MARKER + text[cut:]
                out[int(i)] = _render(values)
    return out


def write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def stale_rows_for(rng: np.random.Generator, current: np.ndarray, stale: pd.DataFrame) -> np.ndarray:
    """Per record, a row of ``stale`` (redistricting.stale_codes) whose successor is the record's county,
    or -1 when the record of changes has none for it.

    Changes since 1995 come first: a stale record is more likely years old than decades.
    """
    recent = (stale["year"] >= 1995).to_numpy()
    maps_to = stale["maps_to"].to_numpy(dtype=object)
    candidates: dict[str, np.ndarray] = {}  # per current code: the same for every record of it
    out = np.full(len(current), -1, dtype=np.int64)
    for j, code in enumerate(current):
        if code not in candidates:
            mine = maps_to == code
            candidates[code] = np.flatnonzero(mine & recent if (mine & recent).any() else mine)
        cand = candidates[code]
        if len(cand):
            out[j] = cand[int(rng.integers(len(cand)))]
    return out
