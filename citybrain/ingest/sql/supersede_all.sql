-- A full snapshot replaces every current row of the feed: all of them move to history, without a join
-- on the loads ($superseded: every current load of the feed) that selects them all anyway.
INSERT INTO raw_history.{table} BY NAME
SELECT r.*, $batch_id AS _superseded_by_batch, now() AS _superseded_at
FROM raw.{table} AS r;

DELETE FROM raw.{table};

UPDATE raw.ingestion_log AS l
SET status = 'superseded', superseded_by_batch = $batch_id, superseded_at = now()
FROM superseded AS s
WHERE l.log_id = s.log_id;
