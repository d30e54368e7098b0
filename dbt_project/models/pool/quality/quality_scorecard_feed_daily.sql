-- Quality scorecard per feed and day: deliveries and rows, the raw suites' expectations, and lateness
-- against the catalog's allowed age. The provider scorecards aggregate this table; the rules are in
-- _quality.yml (model and column descriptions).
--
-- Built in the first dbt step, which Dagster starts only after the raw feeds' blocking checks: the
-- expectations counted here are those of the raw suites of the same run (the departments' deliveries).
{%- set timezone = 'Asia/Shanghai' %}  {#- the catalog's partition time zone (catalog/sources.yaml) #}
{#- quality.expectation_results is created by the first check step: before that (dbt run by hand on a new
    lake) read an empty relation of the same shape. #}
{%- set results_source = source('quality', 'expectation_results') %}
{%- set results_exist = execute and adapter.get_relation(
        database=results_source.database, schema=results_source.schema,
        identifier=results_source.identifier) is not none %}

with feeds as (
    select
        feed_id,
        provider_code,
        provider_name,
        provider_name_en,
        partitioning <> 'none' as partitioned,
        cast(max_age_hours as double) as max_age_hours
    from {{ source('reference', 'feeds') }}
),

-- Every delivery processed, with the day it counts for: the partition day, else the local day it started.
deliveries as (
    select
        log.feed_id,
        log.status,
        log.rows_received,
        log.rows_loaded,
        log.rows_quarantined,
        log.started_at,
        log.finished_at,
        coalesce(log.partition_date, cast({{ local_time('log.started_at', timezone) }} as date)) as day,
        log.status in ('loaded', 'superseded') as arrived
    from {{ ref('stg_ingestion_log') }} as log
    semi join feeds using (feed_id)
),

-- Lateness is judged as of the end of the latest delivery processed, so a rebuild gives the same table.
as_of as (
    select max(finished_at) as as_of from deliveries
),

delivery_counts as (
    select
        feed_id,
        day,
        count(*) filter (where arrived) as deliveries,
        count(*) filter (where status = 'failed') as failed_deliveries,
        coalesce(sum(rows_received) filter (where arrived), 0) as rows_received,
        coalesce(sum(rows_loaded) filter (where arrived), 0) as rows_loaded,
        coalesce(sum(rows_quarantined) filter (where arrived), 0) as rows_quarantined,
        min(started_at) filter (where arrived) as first_arrival_at
    from deliveries
    group by feed_id, day
),

first_attempts as (
    select feed_id, min(day) as first_day, min(started_at) as first_attempt_at
    from deliveries
    group by feed_id
),

-- Unpartitioned feeds: each delivery with the one before it (the age the feed had reached when it came).
arrivals as (
    select
        feed_id,
        started_at as arrived_at,
        lag(started_at) over (partition by feed_id order by started_at) as previous_arrival_at
    from deliveries
    where arrived
),

arrival_gaps as (
    select
        feed_id,
        cast({{ local_time('arrived_at', timezone) }} as date) as day,
        max({{ epoch_seconds('arrived_at') }} - {{ epoch_seconds('previous_arrival_at') }})
        / 3600.0 as max_gap_hours
    from arrivals
    where previous_arrival_at is not null
    group by all
),

results as (
    {%- if results_exist %}
    select run_id, suite, partition_key, severity, success, evaluated_at
    from {{ results_source }}
    where suite like 'raw.%'
    {%- else %}
    select
        cast(null as {{ dbt.type_string() }}) as run_id,
        cast(null as {{ dbt.type_string() }}) as suite,
        cast(null as {{ dbt.type_string() }}) as partition_key,
        cast(null as {{ dbt.type_string() }}) as severity,
        cast(null as boolean) as success,
        cast(null as {{ type_timestamptz() }}) as evaluated_at
    where false
    {%- endif %}
),

-- A suite validated per partition counts for that day; a whole-table suite for the local day it ran.
results_by_day as (
    select
        *,
        coalesce(try_cast(partition_key as date), cast({{ local_time('evaluated_at', timezone) }} as date))
            as day
    from results
),

-- Of several runs checking the same suite and partition (whole-table: the same day), the latest counts.
latest_runs as (
    select suite, partition_key, day, run_id
    from (
        select suite, partition_key, day, run_id, max(evaluated_at) as last_evaluated_at
        from results_by_day
        group by suite, partition_key, day, run_id
    ) as runs
    qualify
        row_number() over (
            partition by suite, partition_key, day order by last_evaluated_at desc, run_id desc
        ) = 1
),

result_counts as (
    select
        feeds.feed_id,
        r.day,
        -- the scoring rule, shared with the resource catalog:
        {{ expectation_counts('r.success', 'r.severity') }}
    from results_by_day as r
    semi join latest_runs as l
        on r.suite = l.suite
        and r.partition_key is not distinct from l.partition_key
        and r.day = l.day
        and r.run_id = l.run_id
    inner join feeds on r.suite = 'raw.' || feeds.feed_id
    group by all
),

calendar as (
    select {{ day_series('first_day', 'last_day') }} as day
    from (
        select min(day) as first_day, max(day) as last_day
        from (
            select day from delivery_counts
            union all
            select day from result_counts
        ) as days
    ) as bounds
),

feed_days as (
    select
        feeds.*,
        calendar.day,
        {{ instant_at('cast(calendar.day as timestamp)', timezone) }} as day_start,
        first_attempts.first_day,
        first_attempts.first_attempt_at,
        as_of.as_of
    from feeds
    cross join calendar
    cross join as_of
    left join first_attempts using (feed_id)
),

measured as (
    select
        fd.*,
        coalesce(dc.deliveries, 0) as deliveries,
        coalesce(dc.failed_deliveries, 0) as failed_deliveries,
        coalesce(dc.rows_received, 0) as rows_received,
        coalesce(dc.rows_loaded, 0) as rows_loaded,
        coalesce(dc.rows_quarantined, 0) as rows_quarantined,
        dc.first_arrival_at,
        coalesce(rc.expectations_evaluated, 0) as expectations_evaluated,
        coalesce(rc.expectations_passed, 0) as expectations_passed,
        coalesce(rc.blocking_failed, 0) as blocking_failed,
        coalesce(rc.warnings_failed, 0) as warnings_failed,
        -- partitioned: the day's data is due max_age_hours after the day starts
        {{ add_seconds('fd.day_start', 'fd.max_age_hours * 3600') }} as partition_due_at,
        -- unpartitioned: the age is looked at the end of the day, or as of now for the latest day
        least(fd.day_start + interval 1 day, fd.as_of) as checkpoint_at,
        ag.max_gap_hours
    from feed_days as fd
    left join delivery_counts as dc using (feed_id, day)
    left join result_counts as rc using (feed_id, day)
    left join arrival_gaps as ag using (feed_id, day)
),

-- The last arrival at or before the checkpoint (one row per feed and day).
last_arrivals as (
    select m.feed_id, m.day, max(a.arrived_at) as last_arrival_at
    from measured as m
    inner join arrivals as a
        on m.feed_id = a.feed_id
        and m.checkpoint_at >= a.arrived_at
    group by m.feed_id, m.day
),

with_last_arrival as (
    select
        m.*,
        la.last_arrival_at
    from measured as m
    left join last_arrivals as la
        on m.feed_id = la.feed_id
        and m.day = la.day
),

expected as (
    select
        *,
        coalesce(
            day >= first_day
            and case
                when partitioned then first_arrival_at is not null or partition_due_at <= as_of
                else day_start <= as_of
            end,
            false
        ) as is_expected
    from with_last_arrival
),

judged as (
    select
        *,
        case
            when not is_expected then null
            when partitioned
                then greatest(
                        0,
                        (
                            {{ epoch_seconds('coalesce(first_arrival_at, as_of)') }}
                            - {{ epoch_seconds('partition_due_at') }}
                        )
                        / 3600.0
                    )
            when last_arrival_at is null
                then greatest(
                        0,
                        ({{ epoch_seconds('checkpoint_at') }} - {{ epoch_seconds('first_attempt_at') }})
                        / 3600.0
                    )
            else greatest(
                    0,
                    greatest(
                        max_gap_hours,
                        ({{ epoch_seconds('checkpoint_at') }} - {{ epoch_seconds('last_arrival_at') }})
                        / 3600.0
                    )
                    - max_age_hours
                )
        end as lateness_hours
    from expected
)

select
    cast(day as date) as day,
    cast(provider_code as {{ dbt.type_string() }}) as provider_code,
    cast(provider_name as {{ dbt.type_string() }}) as provider_name,
    cast(provider_name_en as {{ dbt.type_string() }}) as provider_name_en,
    cast(feed_id as {{ dbt.type_string() }}) as feed_id,
    cast(partitioned as boolean) as partitioned,
    cast(max_age_hours as double) as max_age_hours,
    {{ scorecard_counters() }},
    cast(blocking_failed as bigint) as blocking_failed,
    cast(warnings_failed as bigint) as warnings_failed,
    cast(is_expected as boolean) as expected,
    cast(deliveries > 0 as boolean) as delivered,
    cast(coalesce(lateness_hours > 0, false) as boolean) as late,
    cast(lateness_hours as double) as lateness_hours,
    cast(first_arrival_at as {{ type_timestamptz() }}) as first_arrival_at
from judged
where is_expected or deliveries > 0 or failed_deliveries > 0 or expectations_evaluated > 0
