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

# Superset of batch.FORMULA_LIKE: any leading run of characters that are neither letters nor digits (every
# whitespace character of Python's \s is one), then = + - or @. Numbers with a sign are flagged, then cleared.
FORMULA_PREFILTER = r"^[^\p{L}\p{N}]*[=+@\-]"
# Superset of a blank key (``not v.strip()``): no letter and no digit at all.
NO_LETTER_OR_DIGIT = r"^[^\p{L}\p{N}]*$"


def suspect_rows(columns: list[pa.Array], key_index: list[int], max_chars: int) -> np.ndarray:
    """A numpy boolean mask of the rows that may break a row rule (too large, NUL/BOM, formula, blank key)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(columns[0]) if columns else 0
    flagged = pa.array(np.zeros(n, dtype=bool))
    for i, column in enumerate(columns):
        if column.null_count == len(column):
            tests = []
        else:
            tests = [
                pc.greater(pc.utf8_length(column), max_chars),
                pc.match_substring(column, "\x00"),
                pc.match_substring(column, "\ufeff"),
                pc.match_substring_regex(column, FORMULA_PREFILTER),
            ]
        if i in key_index:
            tests += [pc.is_null(column), pc.match_substring_regex(column, NO_LETTER_OR_DIGIT)]
        for test in tests:
            flagged = pc.or_(flagged, pc.fill_null(test, False))
    return flagged.to_numpy(zero_copy_only=False)
