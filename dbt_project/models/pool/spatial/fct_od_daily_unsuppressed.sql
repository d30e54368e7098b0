{{ daily_incremental_config('stat_date') }}
-- Daily trips between districts fused across the three operators (see docs/POOL_SPATIAL.md), before
-- small-cell suppression: the open pool.fct_od_daily is this with small cells hidden; the publication
-- check reads the true values from here (never published).
--   est_trips = Σ trips / Σ market_share (share of each operator in the origin district),
-- over the operators that delivered OD for the day (an operator missing the day adds neither trips nor
-- share); an operator that delivered the day but not the pair counts 0 trips for it.
with trips as (
    select *
    from {{ ref('int_od__operator_trips') }}
    where market_share is not null {{ partition_window('stat_date') }}
),

operator_days as (
    select distinct operator, stat_date from trips
),

pairs as (
    select distinct stat_date, origin_district_code, destination_district_code from trips
),

reporting as (
    select
        pairs.stat_date,
        pairs.origin_district_code,
        pairs.destination_district_code,
        operator_days.operator,
        share.subscriber_share
    from pairs
    inner join operator_days on pairs.stat_date = operator_days.stat_date
    {{ join_market_share(
        'inner', 'pairs.origin_district_code', 'operator_days.operator', 'pairs.stat_date'
    ) }}
),

combined as (
    select
        reporting.*,
        coalesce(trips.trips, 0) as operator_trips,
        case when trips.suppressed_pairs > 0 then 1 else 0 end as has_suppressed
    from reporting
    left join trips
        on reporting.stat_date = trips.stat_date
        and reporting.origin_district_code = trips.origin_district_code
        and reporting.destination_district_code = trips.destination_district_code
        and reporting.operator = trips.operator
)

select
    cast(stat_date as date) as stat_date,
    cast(origin_district_code as {{ dbt.type_string() }}) as origin_district_code,
    cast(destination_district_code as {{ dbt.type_string() }}) as destination_district_code,
    cast(sum(operator_trips) / sum(subscriber_share) as double) as est_trips,
    cast(sum(operator_trips) as double) as observed_trips,
    cast(sum(subscriber_share) as double) as share_covered,
    cast(count(*) as integer) as operators_reporting,
    cast(sum(has_suppressed) as integer) as suppressed_operators
from combined
group by stat_date, origin_district_code, destination_district_code
