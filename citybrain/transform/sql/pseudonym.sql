-- Resident pseudonyms in plain SQL: HMAC-SHA256 (RFC 2104) of the value's UTF-8 bytes under the lake's
-- secret salt, as lowercase hex - the same digest as citybrain.transform.udfs.pseudonym (Python's hmac).
-- Created as a temporary DuckDB macro on every dbt connection and cursor (udfs.register_sql_macros) with
-- the salt's pads filled in there: the salt is never in a model's SQL, the compiled files or dbt's logs,
-- only in the memory of the connection. DuckDB hashes a whole vector natively, on every thread, where the Python
-- function it replaces on DuckDB cost some 3 us per value under the interpreter lock (1M residents: ~7 s).
--   {inner_pad}: hex of (salt padded to 64 bytes) XOR 0x36 bytes, {outer_pad} the same XOR 0x5c.
create or replace temp macro cb_pseudonym(value) as
    sha256(unhex('{outer_pad}') || unhex(sha256(unhex('{inner_pad}') || encode(cast(value as varchar)))))
