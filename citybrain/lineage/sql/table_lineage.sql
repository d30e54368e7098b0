-- The deliveries behind each published table ($upstream: table_name, feed_id, daily, via_snapshot).
-- A daily fact's rows of day D were built from the day-D deliveries of partitioned feeds (day = D) and from
-- the current loads of unpartitioned feeds (day NULL: behind every day). Other tables: every current load of
-- their feeds (day NULL). A feed read through a dbt snapshot (SCD2 history) also lists its superseded loads,
-- whose records the snapshot still holds as earlier versions.
SELECT
    u.table_name,
    CASE WHEN u.daily AND l.partition_key IS NOT NULL THEN CAST(l.partition_key AS DATE) END AS day,
    l.feed_id,
    l.partition_key,
    l.source_file,
    l.file_sha256,
    l.batch_id AS loaded_by_run,
    l.finished_at AS loaded_at,
    l.status,
    l.rows_loaded,
    u.via_snapshot
FROM upstream AS u
INNER JOIN warehouse.raw.ingestion_log AS l
    ON l.feed_id = u.feed_id
    AND (l.status = 'loaded' OR (u.via_snapshot AND l.status = 'superseded'))
ORDER BY u.table_name, day NULLS FIRST, l.feed_id, l.partition_key, l.source_file
