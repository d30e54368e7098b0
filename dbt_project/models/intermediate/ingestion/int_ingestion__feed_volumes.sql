-- Per feed and partition: what arrived and what was kept, for the current (not superseded) deliveries.
select
    feed_id,
    provider,
    partition_date,
    count(*) as deliveries,
    sum(rows_received) as rows_received,
    sum(rows_loaded) as rows_loaded,
    sum(rows_quarantined) as rows_quarantined,
    max(finished_at) as last_loaded_at
from {{ ref('stg_ingestion_log') }}
where status = 'loaded'
group by feed_id, provider, partition_date
