"""Reason codes for quarantined rows. Stable strings: tests, scorecards and the demo manifest use them."""

COLUMN_COUNT_MISMATCH = "column_count_mismatch"  # a CSV record with more or fewer fields than the header
UNDECODABLE_BYTES = "undecodable_bytes"  # bytes that are not valid in the declared encoding
INVALID_JSON = "invalid_json"  # a JSON Lines line (or API record) that does not parse
NOT_A_JSON_OBJECT = "not_a_json_object"  # parses, but is not an object (a list, a number, ...)
MISSING_KEY = "missing_key"  # a key column is absent or blank

ALL = (COLUMN_COUNT_MISMATCH, UNDECODABLE_BYTES, INVALID_JSON, NOT_A_JSON_OBJECT, MISSING_KEY)
