-- Per day of a granted slice: its rows and an order-independent digest of their content, so a day is
-- delivered again only when what the consumer may see of it changed. Each row is rendered as JSON
-- (column names and values, strings quoted) and hashed with MD5; the two 64-bit halves are summed over the
-- day (a multiset sum: the same rows in any order give the same sums, a changed, added or removed row
-- changes them). Streaming aggregates: no day is held in memory.
-- Placeholders, replaced as sqlglot expressions (never pasted text): "granted_slice" (the grant's
-- SELECT, enforce.granted_slice) and "day_column" (the daily fact's day column; for a table delivered
-- whole the code groups by nothing and names the single digest "*").
SELECT
    granted.day_column AS day_value,
    CAST(granted.day_column AS VARCHAR) AS day_key,
    count(*) AS row_count,
    sum(md5_number_upper(CAST(to_json(granted) AS VARCHAR))) AS upper_sum,
    sum(md5_number_lower(CAST(to_json(granted) AS VARCHAR))) AS lower_sum
FROM granted_slice AS granted
GROUP BY granted.day_column
