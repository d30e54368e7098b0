"""Domain functions the dbt models call, backed by maintained libraries rather than hand-written rules.

Identifier rules come from python-stdnum (GB 11643 resident IDs, GB 32100 USCC), coordinate systems
from prcoords (GCJ-02 / BD-09 → WGS-84), the spatial grid from h3. They are registered as DuckDB
functions (prefix ``cb_``) by the dbt-duckdb plugin in ``dbt_plugin.py``; dbt models reach them only
through the macros in ``dbt_project/macros/domain.sql`` so another engine can bind its own versions.

Every function returns NULL for NULL input and never raises on bad
data: an invalid identifier gives NULL from ``*_normalize`` and a reason from ``*_problem``.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import time
import unicodedata
from datetime import date
from functools import lru_cache
from pathlib import Path

import h3
import prcoords
from stdnum.cn import ric, uscc

GRID_RESOLUTION = 8  # H3 resolution of dim_grid (~0.74 km² cells), the operator A unit

_CHECK_CHARACTERS = frozenset("0123456789X")
_RIC_15 = re.compile(r"^\d{15}$")


def halfwidth(value: str) -> str:
    """Full-width digits, letters and punctuation to ASCII (NFKC), trimmed."""
    return value.strip() if value.isascii() else unicodedata.normalize("NFKC", value).strip()


# What ``str.strip`` removes from an ASCII string (it also takes the separators \x1c-\x1f).
_ASCII_WHITESPACE = "".join(c for c in map(chr, range(128)) if c.isspace())


def halfwidths(values):
    """``halfwidth`` over an Arrow string vector. A vector of ASCII text only (identifiers, dates, codes,
    phone numbers: most columns of a delivery) has nothing for NFKC to change, so it is only trimmed of
    what ``str.strip`` removes, in Arrow; any other vector goes value by value through ``halfwidth``
    (``vectorized``). The staging models run this on every text column of every delivery (a 1M-row
    registry: 9M values)."""
    import pyarrow.compute as pc

    if len(values) == values.null_count or pc.all(pc.string_is_ascii(values)).as_py():
        return pc.utf8_trim(values, characters=_ASCII_WHITESPACE)
    return vectorized(halfwidth, "varchar")(values)


def _clean_identifier(value: str) -> str:
    """Half-width, without spaces or dashes, upper-case. Most values are already 18 plain ASCII letters
    and digits, which the regular expression would leave as they are: they skip it (a third of the cost
    of checking an ID, which runs for every ID of every delivery and again in the quality checks)."""
    text = halfwidth(value)
    if len(text) == 18 and text.isascii() and text.isalnum():
        return text.upper()
    return re.sub(r"[\s-]", "", text).upper()


def _ric_candidate(value: str) -> str:
    """Clean, upper-case, and upgrade a 15-digit legacy number to 18 digits (century 19, new check digit)."""
    number = _clean_identifier(value)
    if _RIC_15.match(number):
        body = number[:6] + "19" + number[6:]
        number = body + ric.calc_check_digit(body + "X")  # stdnum takes the number with a check position
    return number


@lru_cache(maxsize=65536)
def ric_problem(value: str) -> str | None:
    """Why a resident ID is unusable (None when valid). The birthplace is not checked: stdnum's table
    rejects valid codes newer than itself."""
    number = _ric_candidate(value)
    if not number:
        return "blank"
    if len(number) != 18:
        return "bad_length"
    if not (number.isascii() and number[:17].isdigit() and number[17] in _CHECK_CHARACTERS):
        return "bad_format"
    if ric.calc_check_digit(number) != number[-1]:
        return "bad_check_digit"
    born = _birth_date(number[6:14])
    if born is None or born > _today() or born.year < 1880:
        return "bad_birth_date"
    return None


_TODAY: list = [None, None]  # [the second it was read, the date then]


def _today() -> date:
    """Today's date, read from the clock at most once a second (``date.today()`` costs as much as the
    check digit, and is asked for every ID)."""
    second = int(time.time())
    if _TODAY[0] != second:
        _TODAY[:] = [second, date.today()]
    return _TODAY[1]


# GB 11643's check: weights 2^(17-i) mod 11 of the 17 digits; the weighted sum mod 11 picks the character.
_RIC_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_RIC_CHECK_BY_REMAINDER = b"10X98765432"
_PLAIN_RIC = r"^[0-9]{17}[0-9X]$"  # RE2 (Arrow): ASCII digits only, `$` at the very end
_DAYS_IN_MONTH = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


class _PlainValues:
    """The values of an Arrow string vector that match ``pattern`` (18 ASCII characters, already in their
    canonical form), as an ``n x 18`` byte matrix for numpy; the rest are left to the row functions."""

    def __init__(self, values, pattern: str):
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        self.values = values.cast(pa.string())
        plain = pc.fill_null(pc.match_substring_regex(self.values, pattern), False)
        self.plain = plain.to_numpy(zero_copy_only=False)
        self.fast = np.flatnonzero(self.plain)
        self.slow = np.flatnonzero(~self.plain)
        codes = pc.take(self.values, pa.array(self.fast, type=pa.int64()))
        offsets = np.frombuffer(codes.buffers()[1], dtype=np.int32)[
            codes.offset : codes.offset + len(codes) + 1
        ]
        data = codes.buffers()[2]
        self.text = (
            np.frombuffer(data, dtype=np.uint8)[offsets[0] : offsets[-1]].reshape(-1, 18)
            if data is not None and len(codes)
            else np.zeros((0, 18), dtype=np.uint8)
        )

    def others(self) -> list:
        """The values the row functions judge, in order."""
        import pyarrow as pa
        import pyarrow.compute as pc

        return pc.take(self.values, pa.array(self.slow, type=pa.int64())).to_pylist()

    def kept_if(self, valid, row_function):
        """A string vector: each plain value where ``valid`` (numpy, one per plain value), else None, and
        ``row_function`` for the others (a ``*_normalize``: a valid plain value is its own canonical form)."""
        import numpy as np

        fast = np.asarray(self.values.take(self.fast).to_pylist() if len(self.fast) else [], dtype=object)
        fast[~valid] = None
        return self.text_result(fast, row_function)

    def text_result(self, fast_values, row_function):
        """A string vector: ``fast_values`` (numpy, one per plain value) and ``row_function`` for the others."""
        import numpy as np
        import pyarrow as pa

        out = np.full(len(self.values), None, dtype=object)
        out[self.fast] = fast_values
        if len(self.slow):
            out[self.slow] = [None if v is None else row_function(v) for v in self.others()]
        return pa.array(out, type=pa.string())


class _PlainIds(_PlainValues):
    """The plain IDs of an Arrow string vector (18 ASCII characters, 17 digits and a digit or X: most
    delivered IDs, already clean) checked all at once with numpy: the same GB 11643 rule as ``ric_problem``
    (check character, then a birth date that exists, from 1880 to today), checked against python-stdnum
    value by value in tests/test_udfs.py, at a sixth of the per-value cost. Every other value (blank,
    full-width, lower-case x, spaces, dashes, 15 digits...) is left to the row functions."""

    def __init__(self, values):
        import numpy as np

        super().__init__(values, _PLAIN_RIC)
        text = self.text
        digits = text[:, :17].astype(np.int64) - ord("0")
        check = np.frombuffer(_RIC_CHECK_BY_REMAINDER, dtype=np.uint8)[(digits @ np.array(_RIC_WEIGHTS)) % 11]
        self.year = digits[:, 6:10] @ np.array([1000, 100, 10, 1])
        self.month = digits[:, 10:12] @ np.array([10, 1])
        self.day = digits[:, 12:14] @ np.array([10, 1])
        self.sequence = digits[:, 16]
        leap = ((self.year % 4 == 0) & (self.year % 100 != 0)) | (self.year % 400 == 0)
        month_days = np.array(_DAYS_IN_MONTH)[np.clip(self.month, 0, 12)] + ((self.month == 2) & leap)
        today = _today()
        born = self.year * 10000 + self.month * 100 + self.day
        bad_date = (
            (self.month < 1)
            | (self.month > 12)
            | (self.day < 1)
            | (self.day > month_days)
            | (self.year < 1880)
            | (born > today.year * 10000 + today.month * 100 + today.day)
        )
        self.bad_check = check != text[:, 17]
        self.bad_date = bad_date & ~self.bad_check  # the check character is judged first
        self.valid = ~(self.bad_check | bad_date)


def ric_problems(values):
    """``ric_problem`` over an Arrow string vector (for DuckDB: ``VECTOR_FUNCTIONS``; see ``_PlainIds``)."""
    import numpy as np

    ids = _PlainIds(values)
    verdict = np.full(len(ids.fast), None, dtype=object)
    verdict[ids.bad_date] = "bad_birth_date"
    verdict[ids.bad_check] = "bad_check_digit"
    return ids.text_result(verdict, ric_problem)


def ric_normalized(values):
    """``ric_normalize`` over an Arrow string vector: a plain valid ID is itself."""
    ids = _PlainIds(values)
    return ids.kept_if(ids.valid, ric_normalize)


def ric_sexes(values):
    """``ric_sex`` over an Arrow string vector: the parity of the sequence digit of a valid plain ID."""
    import numpy as np

    ids = _PlainIds(values)
    fast = np.where(ids.sequence % 2 == 1, "M", "F").astype(object)
    fast[~ids.valid] = None
    return ids.text_result(fast, ric_sex)


def ric_birth_dates(values):
    """``ric_birth_date`` over an Arrow string vector (a date vector): the date digits of a valid plain ID."""
    import numpy as np
    import pyarrow as pa

    ids = _PlainIds(values)
    n = len(ids.values)
    days = np.zeros(n, dtype=np.int32)
    known = np.zeros(n, dtype=bool)
    valid = ids.fast[ids.valid]
    if len(valid):
        month_start = (ids.year[ids.valid] - 1970).astype("datetime64[Y]").astype("datetime64[M]")
        month_start += (ids.month[ids.valid] - 1).astype("timedelta64[M]")
        day = month_start.astype("datetime64[D]") + (ids.day[ids.valid] - 1).astype("timedelta64[D]")
        days[valid] = day.astype(np.int64)
        known[valid] = True
    epoch = date(1970, 1, 1)
    for i, value in zip(ids.slow.tolist(), ids.others(), strict=True):
        born = None if value is None else ric_birth_date(value)
        if born is not None:
            days[i], known[i] = (born - epoch).days, True
    return pa.array(days, type=pa.int32(), mask=~known).cast(pa.date32())


def ric_normalize(value: str) -> str | None:
    """The canonical 18-character ID (upper-case X), or None when invalid."""
    return None if ric_problem(value) else _ric_candidate(value)


def ric_birth_date(value: str) -> date | None:
    return None if ric_problem(value) else _birth_date(_ric_candidate(value)[6:14])


@lru_cache(maxsize=65536)  # a century of birth dates is 36,525 keys
def _birth_date(digits: str) -> date | None:
    """stdnum's birth date of a resident ID, which it reads from the ID's digits 7-14 (YYYYMMDD) alone:
    memoized on those digits. stdnum's call costs 4 µs (it re-cleans the number), two thirds of
    validating an ID, and runs for every ID of every delivery. None for an impossible date."""
    try:
        return ric.get_birth_date(f"000000{digits}0000")
    except Exception:  # noqa: BLE001 - stdnum raises InvalidComponent for impossible dates
        return None


def ric_sex(value: str) -> str | None:
    """'M' or 'F' from the parity of the sequence digit."""
    return None if ric_problem(value) else ("M" if int(_ric_candidate(value)[16]) % 2 else "F")


def _uscc_candidate(value: str) -> str:
    return _clean_identifier(value)


@lru_cache(maxsize=65536)
def uscc_problem(value: str) -> str | None:
    code = _uscc_candidate(value)
    if not code:
        return "blank"
    if len(code) != 18:
        return "bad_length"
    try:
        uscc.validate(code)
    except uscc.InvalidChecksum:
        return "bad_check_char"
    except Exception:  # noqa: BLE001 - InvalidFormat / InvalidComponent
        return "bad_format"
    return None


def uscc_normalize(value: str) -> str | None:
    return None if uscc_problem(value) else _uscc_candidate(value)


# GB 32100 (as python-stdnum checks it): 8 digits, then 10 characters of this 31-character alphabet (no I,
# O, S, V, Z); the last is the check character: weights 3^i mod 31 of the first 17, (31 - sum) mod 31.
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_PLAIN_USCC = r"^[0-9]{8}[0-9A-HJ-NPQRTUWXY]{10}$"  # RE2 (Arrow): ASCII only, `$` at the very end


class _PlainUsccs(_PlainValues):
    """The plain USCCs of an Arrow string vector (18 ASCII characters in GB 32100's form, upper-case: most
    delivered codes) checked all at once with numpy: the check character of ``uscc_problem``, checked
    against python-stdnum value by value in tests/test_udfs.py. Everything else goes to the row function."""

    def __init__(self, values):
        import numpy as np

        super().__init__(values, _PLAIN_USCC)
        alphabet = np.frombuffer(_USCC_ALPHABET.encode(), dtype=np.uint8)
        index = np.zeros(256, dtype=np.int64)  # byte -> its place in the alphabet
        index[alphabet] = np.arange(len(alphabet))
        total = index[self.text[:, :17]] @ np.array(_USCC_WEIGHTS)
        check = alphabet[(31 - total) % 31]
        self.valid = check == self.text[:, 17]


def uscc_problems(values):
    """``uscc_problem`` over an Arrow string vector (for DuckDB: ``VECTOR_FUNCTIONS``; see ``_PlainUsccs``)."""
    import numpy as np

    codes = _PlainUsccs(values)
    verdict = np.full(len(codes.fast), None, dtype=object)
    verdict[~codes.valid] = "bad_check_char"
    return codes.text_result(verdict, uscc_problem)


def uscc_normalized(values):
    """``uscc_normalize`` over an Arrow string vector: a plain valid USCC is itself."""
    codes = _PlainUsccs(values)
    return codes.kept_if(codes.valid, uscc_normalize)


def _in_china(lng: float, lat: float) -> bool:
    return 72.0 < lng < 138.0 and 0.8 < lat < 56.0


def gcj02_to_wgs84(lng: float, lat: float) -> tuple[float, float] | None:
    if not _in_china(lng, lat):
        return None
    wgs = prcoords.gcj_wgs_bored((lat, lng))
    return wgs.lon, wgs.lat


def bd09_to_wgs84(lng: float, lat: float) -> tuple[float, float] | None:
    if not _in_china(lng, lat):
        return None
    wgs = prcoords.bd_wgs_bored((lat, lng))
    return wgs.lon, wgs.lat


def h3_cell(lat: float, lng: float, resolution: int = GRID_RESOLUTION) -> str | None:
    if not (-90 <= lat <= 90 and -180 <= lng <= 180):
        return None
    return h3.latlng_to_cell(lat, lng, resolution)


def h3_lat(cell: str) -> float | None:
    return h3.cell_to_latlng(cell)[0] if h3.is_valid_cell(cell) else None


def h3_lng(cell: str) -> float | None:
    return h3.cell_to_latlng(cell)[1] if h3.is_valid_cell(cell) else None


def pseudonym(value: str) -> str:
    """Keyed hash (HMAC-SHA256, salt from the environment) so departments join without the raw ID."""
    from citybrain import settings

    return hmac.new(settings.pseudonym_salt(), value.encode(), hashlib.sha256).hexdigest()


def _salted_pseudonym():
    """``pseudonym`` with the salt read once per connection (on first use, so a missing salt only
    fails a model that needs it)."""
    salt: list[bytes] = []

    def cb_pseudonym(value: str) -> str:
        if not salt:
            from citybrain import settings

            salt.append(settings.pseudonym_salt())
        return hmac.new(salt[0], value.encode(), hashlib.sha256).hexdigest()

    return cb_pseudonym


def scrub_text(value: str) -> str:
    """Free text with personal data masked (citybrain/privacy/scrub.py: IDs, bank cards, phones, e-mail,
    plates, addresses, names), ordinary numbers untouched. This one has no registry names (names are found
    by jieba alone): DuckDB registers ``_connection_scrubber``, Spark ``lake_scrubber``, which have them."""
    return _default_scrubber().scrub(value)


@functools.cache
def _default_scrubber():
    from citybrain.privacy.scrub import Scrubber

    return Scrubber()


def _connection_scrubber(con):
    """``cb_scrub_text`` whose name dictionary is the registry in ``con``'s warehouse, read on the first
    text scrubbed (a dbt run that scrubs nothing never pays for it) through a cursor of its own."""
    import threading

    state: dict = {}
    lock = threading.Lock()

    def cb_scrub_text(value: str) -> str:
        if "scrubber" not in state:
            with lock:
                if "scrubber" not in state:
                    from citybrain.privacy.name_dictionary import registry_names
                    from citybrain.privacy.scrub import Scrubber

                    cursor = con.cursor()
                    try:
                        state["scrubber"] = Scrubber(registry_names(cursor))
                    finally:
                        cursor.close()
        return state["scrubber"].scrub(value)

    return cb_scrub_text


def lake_scrubber():
    """``cb_scrub_text`` for Spark, which has no warehouse connection: the registry's names are read from
    the Parquet lake both engines build from ($CITYBRAIN_LAKE, through DuckDB views of it), on each Python
    worker's first text, so both engines scrub with the same dictionary."""
    state: dict = {}

    def cb_scrub_text(value: str) -> str:
        if "scrubber" not in state:
            import duckdb

            from citybrain import settings
            from citybrain.lake.parquet_lake import duckdb_views
            from citybrain.privacy.name_dictionary import registry_names
            from citybrain.privacy.scrub import Scrubber

            with duckdb.connect() as con:
                duckdb_views(con, settings.lake_dir())
                state["scrubber"] = Scrubber(registry_names(con))
        return state["scrubber"].scrub(value)

    return cb_scrub_text


SQL_MACROS = Path(__file__).with_name("sql") / "masking.sql"
FAST_PATHS = Path(__file__).with_name("sql") / "fast_paths.sql"
# Python functions with a SQL macro of their name in front of them on DuckDB (sql/fast_paths.sql): the macro
# answers the values it can by itself and calls the Python function, registered under this name, for the rest.
# A DuckDB query hands every value of a column to a Python function (Arrow in, Arrow out: about 0.25 s per
# million values for cb_halfwidth), and evaluates it once for each place the query refers to the result.
PYTHON_BEHIND_SQL = {"cb_halfwidth": "cb_halfwidth_python"}


def sql_statements(path: Path) -> list[str]:
    """The statements of a ``.sql`` file of function definitions (``;``-separated, ``--`` comment lines)."""
    statements = []
    for statement in path.read_text(encoding="utf-8").split(";"):
        body = "\n".join(line for line in statement.splitlines() if not line.lstrip().startswith("--"))
        if body.strip():
            statements.append(body)
    return statements


PSEUDONYM_MACRO = Path(__file__).with_name("sql") / "pseudonym.sql"
HMAC_BLOCK_BYTES = 64  # SHA-256's block: an HMAC key is padded (or first hashed) to it


def pseudonym_macro(salt: bytes) -> str:
    """``cb_pseudonym`` as a SQL macro (sql/pseudonym.sql) for ``salt``: HMAC's inner and outer pads."""
    key = hashlib.sha256(salt).digest() if len(salt) > HMAC_BLOCK_BYTES else salt
    key = key.ljust(HMAC_BLOCK_BYTES, b"\0")
    (statement,) = sql_statements(PSEUDONYM_MACRO)
    return statement.format(
        inner_pad=bytes(b ^ 0x36 for b in key).hex(), outer_pad=bytes(b ^ 0x5C for b in key).hex()
    )


def register_sql_macros(con) -> None:
    """The pure-SQL desensitisation functions (sql/masking.sql) and the fast paths in front of Python
    functions (sql/fast_paths.sql) as temporary macros, and ``cb_pseudonym``
    when the lake has a salt (it then stands in for the Python function of the same name, which gives the
    same digests; without a salt that one stays and fails only a model that uses it). Temporary objects
    belong to one DuckDB connection, so dbt-duckdb's cursors need them too (dbt_plugin.configure_cursor)."""
    from citybrain import settings

    for statement in sql_statements(SQL_MACROS) + sql_statements(FAST_PATHS):
        con.execute(statement)
    try:
        salt = settings.pseudonym_salt()
    except RuntimeError:
        return
    con.execute(pseudonym_macro(salt))


def _first(f):
    return lambda lng, lat: r[0] if (r := f(lng, lat)) else None


def _second(f):
    return lambda lng, lat: r[1] if (r := f(lng, lat)) else None


def functions(con=None) -> list[tuple[str, object, list[str], str]]:
    """Every Python domain function: (SQL name, function, parameter types, return type), types as
    ``varchar | double | integer | date``. One table for both engines: DuckDB (``register``) and Spark
    (``citybrain/scale/spark_functions.py``) map the type names to their own. ``con``: the DuckDB connection
    the functions are registered on, whose warehouse gives cb_scrub_text its registry names."""
    return [
        ("cb_halfwidth", halfwidth, ["varchar"], "varchar"),
        ("cb_ric_normalize", ric_normalize, ["varchar"], "varchar"),
        ("cb_ric_problem", ric_problem, ["varchar"], "varchar"),
        ("cb_ric_birth_date", ric_birth_date, ["varchar"], "date"),
        ("cb_ric_sex", ric_sex, ["varchar"], "varchar"),
        ("cb_uscc_normalize", uscc_normalize, ["varchar"], "varchar"),
        ("cb_uscc_problem", uscc_problem, ["varchar"], "varchar"),
        ("cb_gcj02_to_wgs84_lng", _first(gcj02_to_wgs84), ["double", "double"], "double"),
        ("cb_gcj02_to_wgs84_lat", _second(gcj02_to_wgs84), ["double", "double"], "double"),
        ("cb_bd09_to_wgs84_lng", _first(bd09_to_wgs84), ["double", "double"], "double"),
        ("cb_bd09_to_wgs84_lat", _second(bd09_to_wgs84), ["double", "double"], "double"),
        ("cb_h3_cell", h3_cell, ["double", "double", "integer"], "varchar"),
        ("cb_h3_lat", h3_lat, ["varchar"], "double"),
        ("cb_h3_lng", h3_lng, ["varchar"], "double"),
        ("cb_pseudonym", _salted_pseudonym(), ["varchar"], "varchar"),
        ("cb_scrub_text", scrub_text if con is None else _connection_scrubber(con), ["varchar"], "varchar"),
    ]


# Functions with an implementation over whole Arrow vectors of their own (DuckDB only; Spark calls the
# row functions): the identifier checks that run for every ID and USCC of every delivery and in the
# quality checks.
VECTOR_FUNCTIONS = {
    "cb_halfwidth": halfwidths,
    "cb_ric_problem": ric_problems,
    "cb_ric_normalize": ric_normalized,
    "cb_ric_sex": ric_sexes,
    "cb_ric_birth_date": ric_birth_dates,
    "cb_uscc_problem": uscc_problems,
    "cb_uscc_normalize": uscc_normalized,
}


def register(con) -> None:
    """Register every function on a DuckDB connection, vectorized (``VECTOR_FUNCTIONS``, else ``vectorized``)."""
    from duckdb import sqltypes as t

    types = {"varchar": t.VARCHAR, "double": t.DOUBLE, "integer": t.INTEGER, "date": t.DATE}
    for name, function, parameters, returns in functions(con):
        # SPECIAL null handling: the functions may return NULL (e.g. *_problem for a valid value), which
        # DuckDB's DEFAULT handling forbids; NULL input still gives NULL output (vectorized skips it).
        con.create_function(
            PYTHON_BEHIND_SQL.get(name, name),
            _over_vectors(name, function, returns),
            [types[p] for p in parameters],
            types[returns],
            type="arrow",
            null_handling="special",
            side_effects=False,
        )
    register_sql_macros(con)


ARROW_TYPES = {"varchar": "string", "double": "float64", "integer": "int32", "date": "date32"}


def _over_vectors(name: str, function, returns: str):
    """The function DuckDB calls with Arrow vectors: its own vector implementation, else ``vectorized``."""
    own = VECTOR_FUNCTIONS.get(name)
    if own is None:
        return vectorized(function, returns)

    @functools.wraps(function)  # DuckDB reads the parameter count from the signature
    def over_vectors(value):
        return own(value)

    return over_vectors


def vectorized(function, returns: str):
    """``function`` applied to whole Arrow vectors (DuckDB hands over up to 2,048 rows per call), NULL
    for a row with any NULL argument. One Python call per row costs DuckDB about 4 µs on top of the
    function itself; per vector it is a list comprehension, about 5 times faster for the cheap functions
    (cb_halfwidth runs on every text column of every staging model)."""
    import pyarrow as pa

    arrow_type = getattr(pa, ARROW_TYPES[returns])()

    @functools.wraps(function)  # DuckDB reads the parameter count from the signature
    def over_vectors(*arrays):
        columns = [array.to_pylist() for array in arrays]
        if len(columns) == 1:
            values = [None if v is None else function(v) for v in columns[0]]
        else:
            values = [
                None if any(v is None for v in row) else function(*row) for row in zip(*columns, strict=True)
            ]
        return pa.array(values, type=arrow_type)

    return over_vectors


def null_safe(function):
    """``function`` called per row, NULL for a row with any NULL argument (Spark's row-at-a-time UDFs)."""

    @functools.wraps(function)  # the engine reads the parameter count from the signature
    def wrapper(*args):
        return None if any(a is None for a in args) else function(*args)

    return wrapper
