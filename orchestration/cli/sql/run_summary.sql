-- Deliveries and rows per feed that one run (batch_id = its Dagster run id) ingested: `citybrain run`'s summary.
SELECT feed_id, count(*) FILTER (WHERE status IN ('loaded', 'superseded')) AS deliveries,
       sum(rows_received), sum(rows_loaded), sum(rows_quarantined),
       count(*) FILTER (WHERE status = 'failed') AS failed
FROM raw.ingestion_log WHERE batch_id = ? GROUP BY feed_id ORDER BY feed_id
