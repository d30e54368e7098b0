"""Domain functions behind the dbt macros: identifiers (python-stdnum), coordinates (prcoords), grid (h3)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import date, timedelta

import duckdb
import prcoords
import pytest
from stdnum.cn import ric

from citybrain.transform import udfs


def valid_id(first17: str) -> str:
    return first17 + ric.calc_check_digit(first17 + "X")


def test_resident_id_normalisation():
    good = valid_id("11010519491231002")
    assert udfs.ric_normalize(good) == good
    assert udfs.ric_normalize(good.lower()) == good.upper()
    fullwidth = "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in good)
    assert udfs.ric_normalize(f"  {fullwidth} ") == good
    legacy = good[:6] + good[8:17]  # 15 digits: no century, no check digit
    assert udfs.ric_normalize(legacy) == good


def test_invalid_resident_ids_are_rejected_with_a_reason():
    good = valid_id("33010219900101123")
    wrong = good[:-1] + ("0" if good[-1] != "0" else "1")
    assert udfs.ric_problem(wrong) == "bad_check_digit" and udfs.ric_normalize(wrong) is None
    assert udfs.ric_problem("1234") == "bad_length"
    assert udfs.ric_problem("33010219901301123X") in ("bad_check_digit", "bad_birth_date")
    assert udfs.ric_problem(valid_id("33010219901301123")) == "bad_birth_date"  # month 13
    assert udfs.ric_problem("   ") == "blank"
    assert udfs.ric_problem(good[:10] + "X" + good[11:]) == "bad_format"  # a letter inside, 18 characters
    assert udfs.ric_problem(good[:-1] + "Y") == "bad_format"
    assert udfs.ric_problem("٣" + good[1:]) == "bad_format"  # an Arabic-Indic digit is a digit to Python only
    assert udfs.ric_problem(f"{good[:6]}-{good[6:14]}-{good[14:]}") is None  # dashes and spaces are cleaned
    assert udfs.ric_problem(f"{good[:6]} {good[6:]}".lower()) is None
    assert (
        udfs.ric_problem(valid_id(f"330102{date.today() + timedelta(days=1):%Y%m%d}123")) == "bad_birth_date"
    )


def test_birthplace_newer_than_stdnum_is_not_an_error():
    """330113 (临平区) was created in 2021; stdnum's birthplace table raises KeyError for it."""
    number = valid_id("33011320010101123")
    assert udfs.ric_problem(number) is None
    assert udfs.ric_sex(number) == "M" and str(udfs.ric_birth_date(number)) == "2001-01-01"


def test_uscc():
    assert udfs.uscc_normalize(" 91110000600037341l ") == "91110000600037341L"
    assert udfs.uscc_problem("91110000600037341M") == "bad_check_char"
    assert udfs.uscc_problem("9111000060003734") == "bad_length"


@pytest.mark.parametrize(
    ("forward", "backward"), [(prcoords.wgs_gcj, udfs.gcj02_to_wgs84), (prcoords.wgs_bd, udfs.bd09_to_wgs84)]
)
def test_coordinates_back_to_wgs84_within_a_metre(forward, backward):
    lat, lng = 30.2741, 120.1551
    shifted = forward((lat, lng))
    assert abs(shifted.lat - lat) + abs(shifted.lon - lng) > 1e-4  # the offset is real
    back_lng, back_lat = backward(shifted.lon, shifted.lat)
    assert abs(back_lat - lat) < 1e-5 and abs(back_lng - lng) < 1e-5
    assert backward(0.0, 0.0) is None  # outside China: no conversion


def test_pseudonym_needs_a_salt(monkeypatch, tmp_path):
    monkeypatch.setenv("CITYBRAIN_HOME", str(tmp_path))
    monkeypatch.delenv("CITYBRAIN_PSEUDONYM_SALT", raising=False)
    with pytest.raises(RuntimeError, match="no pseudonym salt: set CITYBRAIN_PSEUDONYM_SALT"):
        udfs.pseudonym("x")
    monkeypatch.setenv("CITYBRAIN_PSEUDONYM_SALT", "one")
    first = udfs.pseudonym("330102199001011234")
    monkeypatch.setenv("CITYBRAIN_PSEUDONYM_SALT", "two")
    assert udfs.pseudonym("330102199001011234") != first and len(first) == 64


@pytest.mark.parametrize(
    "salt",
    ["s", "a-long-random-secret-" * 2, "k" * 64, "长盐" * 40, "x" * 200],
    ids=["short", "medium", "one-block", "multibyte-long", "long"],
)
def test_pseudonyms_in_duckdb_are_pythons_hmac(monkeypatch, salt):
    """The SQL macro DuckDB uses (sql/pseudonym.sql) against the standard library's HMAC, on salts
    shorter than, as long as and longer than SHA-256's 64-byte block (hashed first), and on values of
    every kind a pool key may be: ASCII, Chinese, empty, long, NULL, a number cast by DuckDB."""
    monkeypatch.setenv("CITYBRAIN_PSEUDONYM_SALT", salt)
    values = ["330102199001011234", "张三", "", "91330100MA27XL0X4B" * 20, None, "a'b\\c"]
    got = [row[0] for row in _in_duckdb(values, "cb_pseudonym")]
    key = salt.encode()
    assert got == [
        None if v is None else hmac.new(key, v.encode(), hashlib.sha256).hexdigest() for v in values
    ]
    con = duckdb.connect()
    udfs.register(con)
    assert con.execute("SELECT cb_pseudonym(42)").fetchone()[0] == hmac.new(key, b"42", "sha256").hexdigest()
    kinds = con.execute("SELECT function_type FROM duckdb_functions() WHERE function_name = 'cb_pseudonym'")
    assert "macro" in {kind for (kind,) in kinds.fetchall()}  # DuckDB's hash, not the Python function


def test_without_a_salt_only_a_pseudonym_fails(monkeypatch, tmp_path):
    monkeypatch.setenv("CITYBRAIN_HOME", str(tmp_path))
    monkeypatch.delenv("CITYBRAIN_PSEUDONYM_SALT", raising=False)
    con = duckdb.connect()
    udfs.register(con)  # no salt: registering works, the other functions work
    assert con.execute("SELECT cb_mask_phone('13812345678')").fetchone()[0] == "138****5678"
    with pytest.raises(duckdb.Error, match="no pseudonym salt"):
        con.execute("SELECT cb_pseudonym('330102199001011234')").fetchall()


def test_registered_in_duckdb(monkeypatch):
    monkeypatch.setenv("CITYBRAIN_PSEUDONYM_SALT", "s")
    con = duckdb.connect()
    udfs.register(con)
    good = valid_id("11010519491231002")
    row = con.execute(
        "SELECT cb_ric_normalize(?), cb_ric_problem(NULL), cb_h3_cell(30.27, 120.15, 8), cb_halfwidth('ＡＢ１ ')",
        [good.lower()],
    ).fetchone()
    assert row == (good, None, udfs.h3_cell(30.27, 120.15), "AB1")


def test_functions_may_return_null_for_non_null_input(monkeypatch):
    """A valid ID has no problem: NULL out for a non-NULL in must not be an error in DuckDB."""
    con = duckdb.connect()
    udfs.register(con)
    good = valid_id("11010519491231002")
    assert con.execute(
        "SELECT cb_ric_problem(x) FROM (VALUES (?), (NULL), ('1')) t(x)", [good]
    ).fetchall() == [
        (None,),
        (None,),
        ("bad_length",),
    ]


def test_memoized_birth_date_is_stdnums_for_every_kind_of_date():
    """udfs._birth_date memoizes stdnum's birth date on the 8 date digits: same answer for valid dates,
    impossible ones (month 13, day 32, 29 February of a common year) and either century."""
    import random

    rng = random.Random(7)
    dates = ["20000229", "19000229", "20240229", "20230229", "19991301", "20000132", "18790101"]
    dates += [
        f"{rng.randint(1850, 2030)}{rng.randint(0, 13):02d}{rng.randint(0, 32):02d}" for _ in range(5000)
    ]
    for digits in dates:
        number = valid_id(f"330102{digits}123")
        try:
            expected = ric.get_birth_date(number)
        except Exception:  # noqa: BLE001 - stdnum's InvalidComponent
            expected = None
        assert udfs._birth_date(digits) == expected, number
        assert udfs.ric_birth_date(number) == (expected if udfs.ric_problem(number) is None else None)


def test_vectorized_functions_over_many_rows_match_the_python_ones(monkeypatch):
    """Registered functions take whole vectors (udfs.vectorized): row order, NULLs and several vectors
    (DuckDB hands over 2,048 rows at a time) come back as the per-row functions give them."""
    monkeypatch.setenv("CITYBRAIN_PSEUDONYM_SALT", "s")
    con = duckdb.connect()
    udfs.register(con)
    ids = [valid_id(f"3301021990{i % 12 + 1:02d}{i % 28 + 1:02d}{i % 1000:03d}") for i in range(5000)]
    ids[::7] = [None] * len(ids[::7])
    ids[3::11] = ["x" + str(i) for i in range(len(ids[3::11]))]
    rows = con.execute(
        "SELECT cb_ric_problem(v), cb_ric_birth_date(v), cb_h3_cell(30.0 + i / 1e4, 120.0, 8) "
        "FROM (SELECT unnest(?) AS v, generate_subscripts(?, 1) AS i) ORDER BY i",
        [ids, ids],
    ).fetchall()
    assert [r[0] for r in rows] == [None if v is None else udfs.ric_problem(v) for v in ids]
    assert [r[1] for r in rows] == [None if v is None else udfs.ric_birth_date(v) for v in ids]
    assert [r[2] for r in rows] == [udfs.h3_cell(30.0 + i / 1e4, 120.0) for i in range(1, len(ids) + 1)]


def _in_duckdb(values: list, *functions: str) -> list[tuple]:
    """Each registered function over ``values`` in one DuckDB query (several vectors), in their order."""
    con = duckdb.connect()
    udfs.register(con)
    calls = ", ".join(f"{f}(v)" for f in functions)
    return con.execute(
        f"SELECT {calls} FROM (SELECT unnest(?) AS v, generate_subscripts(?, 1) AS i) ORDER BY i",
        [values, values],
    ).fetchall()


def _stdnum_problem(number: str) -> str | None:
    """The expected verdict on an 18-character ID from python-stdnum's check digit and birth date, and the
    rule's own bounds (born 1880 or later, not after today), worked out here, not by udfs."""
    if not (number.isascii() and number[:17].isdigit() and number[17] in "0123456789X"):
        return "bad_format"
    if ric.calc_check_digit(number) != number[17]:
        return "bad_check_digit"
    try:
        born = ric.get_birth_date(number)
    except Exception:  # noqa: BLE001 - stdnum's InvalidComponent
        return "bad_birth_date"
    return "bad_birth_date" if born.year < 1880 or born > date.today() else None


def test_the_vector_identifier_check_is_stdnums_value_by_value():
    """cb_ric_problem / cb_ric_normalize / cb_ric_sex / cb_ric_birth_date on DuckDB check plain IDs a whole vector at a time with numpy
    (udfs._PlainIds): on 30,000 IDs — right and wrong check characters (X included), impossible and
    future birth dates, 29 February of leap and common years, years before 1880 — the verdict is
    stdnum's, and the forms that are not plain (lower-case x, spaces, full-width, 15 digits, blank)
    still get the row function's answer, in order, with NULLs, over several vectors."""
    import random

    rng = random.Random(11)
    tomorrow = date.today() + timedelta(days=1)
    bodies = [
        f"{rng.choice(['330102', '110101', '652901'])}{rng.randint(1860, 2030)}"
        f"{rng.randint(0, 13):02d}{rng.randint(0, 32):02d}{rng.randint(0, 999):03d}"
        for _ in range(30000)
    ]
    bodies += [f"33010220000229{i:03d}" for i in range(20)] + [f"33010219000229{i:03d}" for i in range(20)]
    plain = [
        valid_id(b) if rng.random() < 0.8 else b + rng.choice("0123456789X") for b in bodies
    ]  # fmt: skip
    plain += [valid_id(f"330102{day:%Y%m%d}{i:03d}") for day in (date.today(), tomorrow) for i in range(20)]
    good = valid_id("11010519491231002")
    others = [None, "", "   ", good.lower(), f" {good} ", good[:6] + "-" + good[6:], good[:6] + good[8:17],
              "".join(chr(ord(c) + 0xFEE0) for c in good), "٣" + good[1:], good[:10] + "X" + good[11:]]  # fmt: skip
    values = plain + others * 50
    rng.shuffle(values)
    rows = _in_duckdb(values, "cb_ric_problem", "cb_ric_normalize", "cb_ric_sex", "cb_ric_birth_date")
    for value, (problem, normalized, sex, born) in zip(values, rows, strict=True):
        if value in others:
            row_functions = (udfs.ric_problem, udfs.ric_normalize, udfs.ric_sex, udfs.ric_birth_date)
            assert (problem, normalized, sex, born) == tuple(
                None if value is None else f(value) for f in row_functions
            ), value
        else:
            assert problem == _stdnum_problem(value), value
            valid = problem is None
            assert normalized == (value if valid else None), value
            assert sex == (("M" if int(value[16]) % 2 else "F") if valid else None), (
                value
            )  # GB 11643: odd is male
            assert born == (ric.get_birth_date(value) if valid else None), value
    verdicts = {p for p, *_ in rows}
    assert {None, "bad_check_digit", "bad_birth_date"} <= verdicts  # every branch was taken


def test_the_vector_uscc_check_is_stdnums_value_by_value():
    """cb_uscc_problem / cb_uscc_normalize on DuckDB check plain USCCs a whole vector at a time
    (udfs._PlainUsccs): on 30,000 codes — right and wrong check characters, every letter of the alphabet
    and the five it leaves out (I, O, S, V, Z), letters among the first eight — the verdict is
    python-stdnum's, and the forms that are not plain (lower case, spaces, dashes, full-width, other
    lengths, blank) still get the row function's answer, in order, with NULLs, over several vectors."""
    import random

    from stdnum.cn import uscc

    rng = random.Random(17)
    letters = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    bodies = [
        "".join(rng.choice("0123456789") for _ in range(8)) + "".join(rng.choice(letters) for _ in range(9))
        for _ in range(30000)
    ]
    bodies += ["9" + rng.choice("ABCDEFGHJKLMNPQRTUWXY") + "".join(rng.choice("0123456789") for _ in range(15))
               for _ in range(50)]  # fmt: skip
    plain = []
    for body in bodies:
        if all(c in "0123456789ABCDEFGHJKLMNPQRTUWXY" for c in body) and rng.random() < 0.8:
            plain.append(body + uscc.calc_check_digit(body + "0"))  # stdnum takes a check position
        else:  # a letter stdnum's alphabet lacks has no check character: any will do
            plain.append(body + rng.choice(letters))
    good = "91110000600037341L"
    assert uscc.is_valid(good)
    others = [None, "", "   ", good.lower(), f" {good} ", good[:8] + "-" + good[8:], good[:17],
              good + "0", "".join(chr(ord(c) + 0xFEE0) for c in good), "٣" + good[1:]]  # fmt: skip
    values = plain + others * 50
    rng.shuffle(values)
    rows = _in_duckdb(values, "cb_uscc_problem", "cb_uscc_normalize")
    for value, (problem, normalized) in zip(values, rows, strict=True):
        if value in others:
            assert (problem, normalized) == (
                None if value is None else udfs.uscc_problem(value),
                None if value is None else udfs.uscc_normalize(value),
            ), value
            continue
        try:
            uscc.validate(value)
            expected = None
        except uscc.InvalidChecksum:
            expected = "bad_check_char"
        except Exception:  # noqa: BLE001 - stdnum's InvalidFormat: a letter outside the alphabet
            expected = "bad_format"
        assert problem == expected, value
        assert normalized == (value if expected is None else None), value
    verdicts = {p for p, _ in rows}
    assert {None, "bad_check_char", "bad_format"} <= verdicts  # every branch was taken


def test_halfwidth_over_vectors_is_nfkc_and_strip_value_by_value():
    """cb_halfwidth over whole vectors (udfs.halfwidths: ASCII-only vectors trimmed in Arrow, others value
    by value) against the standard library's NFKC and ``str.strip``, over vectors that are all ASCII, all
    blank, mixed and full-width, with every whitespace ``str.strip`` knows at either end."""
    import random
    import unicodedata

    rng = random.Random(20)
    spaces = [c for c in map(chr, range(0x3001)) if c.isspace()]
    ascii_part = [f"{rng.choice(spaces[:10])}{rng.randint(0, 10**12)}{rng.choice(['', ' ', chr(0x1F)])}" for _ in range(5000)]  # fmt: skip
    mixed = [f"{rng.choice(spaces)}ＡＢ{i}　号{rng.choice(spaces)}" for i in range(3000)]
    # Plain printable ASCII, which the SQL in front of the Python function answers by itself
    # (sql/fast_paths.sql), beside its edges: DEL, a unit separator, a space inside.
    plain = ["2026-12-01", "110105199001010018", "~!{}", "a" * 40, "\x7f", "1\x1f", "a b"] * 300
    values = ascii_part + [None, "", " ", "\t\x1c"] * 600 + mixed + plain + ascii_part[:2500]
    rng.shuffle(plain)
    values += plain + mixed[:100] + plain
    expected = [None if v is None else unicodedata.normalize("NFKC", v).strip() for v in values]
    assert [row[0] for row in _in_duckdb(values, "cb_halfwidth")] == expected
    assert [row[0] for row in _in_duckdb(values, "cb_halfwidth_python")] == expected
