{{ daily_incremental_config('stat_date') }}
-- Hourly population per grid cell fused across the three operators (see docs/POOL_SPATIAL.md), before
-- small-cell suppression: the open pool.fct_presence_hourly is this with small cells hidden, and the
-- district indicators and the publication check read the true values from here (never published).
--   est_population = Σ subscribers / Σ market_share / var('presence_coverage'),
-- both sums over the operators reporting the hour (an operator that delivered no row for the hour anywhere
-- adds neither count nor share: shares renormalise), each share the operator's share in the cell's
-- district. Within a delivered hour, an operator not listing the cell saw none of its subscribers there:
-- it adds 0 to the numerator and its share to the denominator. That keeps district totals exact although
-- the operators' units (H3 cells, 500 m GCJ-02 squares, base-station cells) do not nest in each other.
-- presence_coverage: the share of residents that all operators together see in an hour (phones carried x
-- phones active in the hour), to go from subscribers to people.
with estimates as (
    select *
    from {{ ref('int_presence__operator_estimates') }}
    where market_share is not null {{ partition_window('stat_date') }}
),

operator_hours as (
    select distinct operator, stat_date, hour_start from estimates
),

grid_hours as (
    select distinct grid_id, district_code, stat_date, hour_start from estimates
),

reporting as (
    select
        grid_hours.grid_id,
        grid_hours.district_code,
        grid_hours.stat_date,
        grid_hours.hour_start,
        operator_hours.operator,
        share.subscriber_share
    from grid_hours
    inner join operator_hours
        on grid_hours.stat_date = operator_hours.stat_date
        and grid_hours.hour_start = operator_hours.hour_start
    {{ join_market_share(
        'inner', 'grid_hours.district_code', 'operator_hours.operator', 'grid_hours.stat_date'
    ) }}
),

combined as (
    select
        reporting.*,
        coalesce(estimates.subscribers, 0) as subscribers,
        case when estimates.operator is not null then 1 else 0 end as has_units,
        case when estimates.suppressed_units > 0 then 1 else 0 end as has_suppressed
    from reporting
    left join estimates
        on reporting.grid_id = estimates.grid_id
        and reporting.hour_start = estimates.hour_start
        and reporting.operator = estimates.operator
)

select
    cast(grid_id as {{ dbt.type_string() }}) as grid_id,
    cast(district_code as {{ dbt.type_string() }}) as district_code,
    cast(stat_date as date) as stat_date,
    cast(hour_start as {{ type_timestamptz() }}) as hour_start,
    cast(sum(subscribers) / sum(subscriber_share) / {{ var('presence_coverage', 0.9) }} as double)
        as est_population,
    cast(sum(subscribers) as double) as observed_subscribers,
    cast(sum(subscriber_share) as double) as share_covered,
    cast(count(*) as integer) as operators_reporting,
    cast(sum(has_units) as integer) as operators_listing,
    cast(sum(has_suppressed) as integer) as suppressed_operators
from combined
group by grid_id, district_code, stat_date, hour_start
