"""What every ``citybrain_*`` suite rule builds with: the suite error and the ``UnexpectedRowsExpectation``.

A module of its own so the rules in their own modules (``small_cells.py``) and the suite loader
(``suites.py``), which registers them, both use it without importing each other.
"""

from __future__ import annotations


class SuiteError(ValueError):
    """A suite file that cannot be used; the message names the file and the entry."""


def unexpected_rows(query: str, description: str, **meta):
    """An unexpected-rows expectation (counted once, ``one_scan.py``); ``{batch}`` is the batch, every
    other brace must be doubled."""
    from citybrain.quality.one_scan import OneScanUnexpectedRowsExpectation

    return OneScanUnexpectedRowsExpectation(
        unexpected_rows_query=query,
        description=description,
        meta=meta,
    )
