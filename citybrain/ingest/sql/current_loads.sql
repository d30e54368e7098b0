-- Loads a new delivery replaces: for full snapshots every current load of the feed, otherwise the
-- current load of the same file name in the same partition (a corrected redelivery).
SELECT log_id, source_file, file_sha256
FROM raw.ingestion_log
WHERE feed_id = $feed_id
  AND status = 'loaded'
  AND ($replace_all OR (partition_key IS NOT DISTINCT FROM $partition_key AND source_file = $source_file));
