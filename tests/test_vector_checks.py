"""The vectorized pre-filter of the row rules never lets a bad row through: every row that the rules
(``BatchBuilder.problem``) quarantine is flagged, over many generated rows made of the characters that
matter (Unicode spaces before a formula, signs, NUL, BOM, U+001F, blank keys, NULLs)."""

from __future__ import annotations

import random

import pyarrow as pa

from citybrain.ingest.batch import BatchBuilder
from citybrain.ingest.vector_checks import suspect_rows

PIECES = ["", " ", "\u3000", "\t", "\x1c", "\x1f", "\x85", "=", "+", "-", "@", "(", "|", "!", "SUM", "cmd", "A1",
          "2.5", "86", "张三", "_x", ".", "\x00", "\ufeff", "é"]  # fmt: skip


def test_every_row_the_rules_refuse_is_flagged():
    rng = random.Random(20)
    columns = ["id", "name", "note"]
    builder = BatchBuilder("test", columns, ["id"])
    rows = []
    for _ in range(5000):
        row = [
            None if rng.random() < 0.05 else "".join(rng.choices(PIECES, k=rng.randint(0, 4)))
            for _ in columns
        ]
        rows.append(row)
    arrays = [pa.array([r[i] for r in rows], type=pa.string()) for i in range(len(columns))]
    flagged = suspect_rows(arrays, [0], max_chars=1 << 20)
    refused = [i for i, r in enumerate(rows) if builder.problem(r) is not None]
    assert len(refused) > 500  # the generator makes plenty of bad rows
    assert [i for i in refused if not flagged[i]] == []
    assert flagged.sum() < len(rows)  # and it is a filter: some rows pass unflagged


def test_a_signed_number_is_flagged_but_not_refused():
    builder = BatchBuilder("test", ["id", "amount"], ["id"])
    arrays = [pa.array(["k1", "k2"]), pa.array(["-2.5", "+86 138"])]
    assert suspect_rows(arrays, [0], max_chars=100).tolist() == [True, True]
    assert builder.problem(["k1", "-2.5"]) is None and builder.problem(["k2", "+86 138"]) is None
