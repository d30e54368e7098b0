-- Telecom-estimated night-time residents per grid and month: the grid's fused presence summed over the
-- month's night hours (var night_hours), divided by how many night hours the month has in the data (city
-- wide). A grid without a row in an hour counts 0 there (no operator saw anyone), and every cell of a month
-- has the same weight: a district total is then a plain sum of cells, which is what small-cell suppression
-- protects (docs/GOVERNANCE.md; fct_presence_hourly hides cells so that no district-hour leaves a hidden
-- cell recoverable). The denominator of per-resident indicators. Reads the true values
-- (fct_presence_hourly_unsuppressed), never the suppressed open table.
with presence as (
    select
        grid_id,
        hour_start,
        cast({{ dbt.date_trunc('month', 'stat_date') }} as date) as month,
        {{ shanghai_hour('hour_start') }} as local_hour,
        est_population
    from {{ ref('fct_presence_hourly_unsuppressed') }}
),

night as (
    select * from presence where local_hour in ({{ var('night_hours') | join(', ') }})
),

night_hours as (
    select month, count(distinct hour_start) as hours from night group by month
)

select
    night.grid_id,
    night.month,
    sum(night.est_population) / max(night_hours.hours) as night_population
from night
inner join night_hours on night.month = night_hours.month
group by night.grid_id, night.month
