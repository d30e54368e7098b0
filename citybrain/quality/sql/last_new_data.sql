-- When each feed last brought new data, from the ingestion log: the end of its newest delivery that was
-- loaded (or loaded and since superseded by a correction) and received rows. A delivery that was
-- unchanged, failed or empty is no new data. The rule that judges the age is citybrain/quality/freshness.py.
select feed_id, max(finished_at) as last_new_data_at
from raw.ingestion_log
where status in ('loaded', 'superseded') and rows_received > 0
group by feed_id
