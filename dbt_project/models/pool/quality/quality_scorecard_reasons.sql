-- Quarantined rows per provider, day, feed and reason code, counted twice: from the breakdown each
-- delivery logged (raw.ingestion_log.quarantined_by_reason) and from the rows kept in raw.quarantine.
-- The two must agree (a test in _quality.yml). Same deliveries and days as quality_scorecard_feed_daily.
{%- set timezone = 'Asia/Shanghai' %}  {#- the catalog's partition time zone (catalog/sources.yaml) #}
with deliveries as (
    select
        log_id,
        feed_id,
        quarantined_by_reason,
        coalesce(partition_date, cast({{ local_time('started_at', timezone) }} as date)) as day
    from {{ ref('stg_ingestion_log') }}
    where status in ('loaded', 'superseded')
),

logged as (
    select feed_id, day, reason, sum(rows_quarantined) as rows_quarantined
    from (
        select
            feed_id,
            day,
            {{ json_object_entries('quarantined_by_reason', 'bigint', 'reason', 'rows_quarantined') }}
        from deliveries
        where quarantined_by_reason is not null
    ) as entries
    group by feed_id, day, reason
),

kept as (
    select deliveries.feed_id, deliveries.day, quarantine.reason, count(*) as rows_in_quarantine
    from {{ source('raw', 'quarantine') }} as quarantine
    inner join deliveries using (log_id)
    group by all
),

feed_days as (
    select * from {{ ref('quality_scorecard_feed_daily') }}
)

select
    cast(feed_days.day as date) as day,
    cast(feed_days.provider_code as {{ dbt.type_string() }}) as provider_code,
    cast(feed_days.provider_name as {{ dbt.type_string() }}) as provider_name,
    cast(feed_days.provider_name_en as {{ dbt.type_string() }}) as provider_name_en,
    cast(feed_days.feed_id as {{ dbt.type_string() }}) as feed_id,
    cast(reasons.reason as {{ dbt.type_string() }}) as reason,
    cast(coalesce(reasons.rows_quarantined, 0) as bigint) as rows_quarantined,
    cast(coalesce(reasons.rows_in_quarantine, 0) as bigint) as rows_in_quarantine,
    cast(coalesce(reasons.rows_quarantined, 0) / nullif(feed_days.rows_received, 0) as double)
        as share_of_received
from (
    select
        coalesce(logged.feed_id, kept.feed_id) as feed_id,
        coalesce(logged.day, kept.day) as day,
        coalesce(logged.reason, kept.reason) as reason,
        logged.rows_quarantined,
        kept.rows_in_quarantine
    from logged
    full outer join kept
        on logged.feed_id = kept.feed_id
        and logged.day = kept.day
        and logged.reason = kept.reason
) as reasons
inner join feed_days using (feed_id, day)
