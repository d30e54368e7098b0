-- SQL in front of Python domain functions on DuckDB (citybrain/transform/udfs.py, PYTHON_BEHIND_SQL): a
-- value the SQL can answer by itself never crosses into Python. Created as temporary macros on every
-- connection and cursor, like sql/masking.sql. Spark calls the Python functions directly.

-- Half-width and trimmed: printable ASCII without any whitespace (identifiers, codes, dates, numbers: most
-- delivered values) has nothing for NFKC to change and nothing to trim, so it is its own answer. Every
-- other value (full-width, spaces, control characters, Chinese text) goes to the Python function.
create or replace temp macro cb_halfwidth(v) as
    case when regexp_full_match(v, '[!-~]*') then v else cb_halfwidth_python(v) end;
