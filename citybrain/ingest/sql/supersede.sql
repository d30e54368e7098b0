-- Move the rows of the superseded loads ($superseded: table of source_file, file_sha256) to history.
INSERT INTO raw_history.{table} BY NAME
SELECT r.*, $batch_id AS _superseded_by_batch, now() AS _superseded_at
FROM raw.{table} AS r
SEMI JOIN superseded AS s ON r._source_file = s.source_file AND r._file_sha256 = s.file_sha256;

DELETE FROM raw.{table} AS r
USING superseded AS s
WHERE r._source_file = s.source_file AND r._file_sha256 = s.file_sha256;

UPDATE raw.ingestion_log AS l
SET status = 'superseded', superseded_by_batch = $batch_id, superseded_at = now()
FROM superseded AS s
WHERE l.log_id = s.log_id;
