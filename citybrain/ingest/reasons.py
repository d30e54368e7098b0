"""Reason codes for quarantined rows. Stable strings: tests, scorecards and the demo manifest use them."""

COLUMN_COUNT_MISMATCH = "column_count_mismatch"  # a CSV record with more or fewer fields than the header
UNDECODABLE_BYTES = "undecodable_bytes"  # bytes that are not valid in the declared encoding
INVALID_JSON = "invalid_json"  # a JSON Lines line (or API record) that does not parse
NOT_A_JSON_OBJECT = "not_a_json_object"  # parses, but is not an object (a list, a number, ...)
MISSING_KEY = "missing_key"  # a key column is absent or blank
DUPLICATE_JSON_KEY = "duplicate_json_key"  # an object names the same key twice: which value is meant?
INVALID_CHARACTERS = "invalid_characters"  # NUL or a byte-order mark inside a value: never data
FIELD_TOO_LARGE = "field_too_large"  # one value longer than MAX_FIELD_CHARS
FORMULA = "formula"  # a spreadsheet formula cell, or text that a spreadsheet would run as one
REPEATED_HEADER = "repeated_header"  # the header line again inside the data (concatenated files)

ALL = (
    COLUMN_COUNT_MISMATCH,
    UNDECODABLE_BYTES,
    INVALID_JSON,
    NOT_A_JSON_OBJECT,
    MISSING_KEY,
    DUPLICATE_JSON_KEY,
    INVALID_CHARACTERS,
    FIELD_TOO_LARGE,
    FORMULA,
    REPEATED_HEADER,
)
