-- Fusion keeps district totals: for every district and hour, the fused population summed over the
-- district's cells equals Σ_operators (the operator's subscribers in the district) / Σ_operators share
-- over the operators that reported the hour, scaled by var('presence_coverage'). Cells of a district
-- share one denominator because an operator reporting the hour counts 0 where it lists no unit.
-- Checked on the fused values before small-cell suppression (fct_presence_hourly_unsuppressed: the open
-- fct_presence_hourly hides small cells). Reported in Dagster as a check of that model.
{{ config(meta={'dagster': {'ref': {'name': 'fct_presence_hourly_unsuppressed'}}}) }}
with fused as (
    select district_code, stat_date, hour_start, sum(est_population) as est_population
    from {{ get_where_subquery(ref('fct_presence_hourly_unsuppressed')) }}  {#- the run's days (test_window.sql) #}
    group by district_code, stat_date, hour_start
),

per_operator as (
    select district_code, hour_start, operator, sum(subscribers) as subscribers, max(market_share) as market_share
    from {{ ref('int_presence__operator_estimates') }}
    where market_share is not null
        and {{ in_run_window('stat_date') }}
        and stat_date in (select distinct stat_date from fused)
    group by district_code, hour_start, operator
),

reporting as (
    select distinct operator, hour_start from per_operator
),

district_hours as (
    select distinct fused.district_code, fused.stat_date, fused.hour_start, reporting.operator, share.subscriber_share
    from fused
    inner join reporting on fused.hour_start = reporting.hour_start
    inner join {{ ref('int_spatial__market_share') }} as share
        on fused.district_code = share.district_code
        and reporting.operator = share.operator
        and fused.stat_date >= share.valid_from
        and fused.stat_date < share.valid_to
),

expected as (
    select
        district_hours.district_code,
        district_hours.hour_start,
        sum(coalesce(per_operator.subscribers, 0)) / sum(district_hours.subscriber_share)
            / {{ var('presence_coverage', 0.9) }} as est_population
    from district_hours
    left join per_operator
        on district_hours.district_code = per_operator.district_code
        and district_hours.hour_start = per_operator.hour_start
        and district_hours.operator = per_operator.operator
    group by district_hours.district_code, district_hours.hour_start
)

select fused.district_code, fused.hour_start, fused.est_population, expected.est_population as expected
from fused
inner join expected
    on fused.district_code = expected.district_code
    and fused.hour_start = expected.hour_start
where abs(fused.est_population - expected.est_population) > 0.001 * greatest(expected.est_population, 1)
