-- Per district and month: telecom-estimated night-time residents and weekday daytime population.
-- Both are plain sums of fused grid-hour cells over the district, scaled by one constant per month (the
-- month's night hours, weekday day hours): the district totals that small-cell suppression of
-- fct_presence_hourly protects (docs/GOVERNANCE.md). True values (fct_presence_hourly_unsuppressed).
with grids as (
    select grid_id, district_code from {{ ref('dim_grid') }}
),

presence as (
    select
        p.grid_id,
        p.stat_date,
        p.hour_start,
        cast({{ dbt.date_trunc('month', 'p.stat_date') }} as date) as month,
        {{ shanghai_hour('p.hour_start') }} as local_hour,
        p.est_population
    from {{ ref('fct_presence_hourly_unsuppressed') }} as p
),

weekday_day as (
    select * from presence
    where local_hour in ({{ var('day_hours') | join(', ') }})
        and {{ iso_day_of_week('stat_date') }} <= 5
),

day_hours as (
    select month, count(distinct hour_start) as hours from weekday_day group by month
),

day_monthly as (
    -- mean over the month's weekday day hours of the district's summed presence
    select g.district_code, p.month, sum(p.est_population) / max(h.hours) as day_population
    from weekday_day as p
    inner join grids as g on p.grid_id = g.grid_id
    inner join day_hours as h on p.month = h.month
    group by g.district_code, p.month
),

night as (
    select g.district_code, n.month, sum(n.night_population) as night_population
    from {{ ref('int_indicators__grid_night_population') }} as n
    inner join grids as g on n.grid_id = g.grid_id
    group by g.district_code, n.month
)

select
    n.district_code,
    n.month,
    n.night_population,
    d.day_population
from night as n
left join day_monthly as d on n.district_code = d.district_code and n.month = d.month
