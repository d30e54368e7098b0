"""A vectorized pre-filter for the row rules of ``batch.BatchBuilder``, over Arrow columns.

Why a pre-filter and not the rules themselves: Arrow's regular expressions (RE2) are not Python's (``\\s``
and ``\\w`` are ASCII-only there, Unicode in Python), and the quarantine detail names the first offending
column in the rules' own order. So each test here is a superset of its rule, cheap over millions of
values; the few rows it flags are checked again one by one by ``BatchBuilder.problem``, the one home of
the rules. A row not flagged here cannot break a rule.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

# Superset of batch.FORMULA_LIKE over values joined by U+001F: where a value starts (or after any U+001F),
# a run of characters that are neither letters nor digits (every whitespace character of Python's \s is
# one), then = + - or @. Numbers with a sign are flagged, then cleared by the rule itself.
JOINED_FORMULA_PREFILTER = r"(?:^|\x{1f})[^\p{L}\p{N}\x{1f}]*[=+@\-]"
# Superset of a blank key (``not v.strip()``): no letter and no digit at all.
NO_LETTER_OR_DIGIT = r"^[^\p{L}\p{N}]*$"


def suspect_rows(columns: list[pa.Array], key_index: list[int], max_chars: int) -> np.ndarray:
    """A numpy boolean mask of the rows that may break a row rule (too large, NUL/BOM, formula, blank key).

    The value tests run once over each row's values joined by U+001F (as ``batch._value_problem`` joins
    them), not once per column: a formula is a value that starts, after no letter or digit, with = + - @,
    and any U+001F in the joined text may start one (a superset again)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not columns:
        return pa.array([], type=pa.bool_()).to_numpy(zero_copy_only=False)
    joined = pc.binary_join_element_wise(*columns, "\x1f", null_handling="replace", null_replacement="")
    tests = [
        pc.match_substring_regex(joined, JOINED_FORMULA_PREFILTER),
        pc.match_substring(joined, "\x00"),
        pc.match_substring(joined, "\ufeff"),
        pc.greater(pc.utf8_length(joined), max_chars),
    ]
    for i in key_index:
        tests += [pc.is_null(columns[i]), pc.match_substring_regex(columns[i], NO_LETTER_OR_DIGIT)]
    flagged = tests[0]
    for test in tests[1:]:
        flagged = pc.or_(flagged, pc.fill_null(test, False))
    return pc.fill_null(flagged, False).to_numpy(zero_copy_only=False)
