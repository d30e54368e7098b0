-- Per district and month: telecom-estimated night-time residents and weekday daytime population.
with grids as (
    select grid_id, district_code from {{ ref('dim_grid') }}
),

presence as (
    select
        p.grid_id,
        p.stat_date,
        {{ shanghai_hour('p.hour_start') }} as local_hour,
        p.est_population
    from {{ ref('fct_presence_hourly') }} as p
),

daytime as (
    -- mean over the day hours of each weekday, summed over the district's grids
    select g.district_code, p.stat_date, sum(p.est_population) / {{ var('day_hours') | length }} as day_population
    from presence as p
    inner join grids as g on p.grid_id = g.grid_id
    where p.local_hour in ({{ var('day_hours') | join(', ') }})
      and {{ iso_day_of_week('p.stat_date') }} <= 5
    group by g.district_code, p.stat_date
),

night as (
    select g.district_code, n.month, sum(n.night_population) as night_population
    from {{ ref('int_indicators__grid_night_population') }} as n
    inner join grids as g on n.grid_id = g.grid_id
    group by g.district_code, n.month
),

day_monthly as (
    select
        district_code,
        cast({{ dbt.date_trunc('month', 'stat_date') }} as date) as month,
        avg(day_population) as day_population
    from daytime
    group by district_code, cast({{ dbt.date_trunc('month', 'stat_date') }} as date)
)

select
    n.district_code,
    n.month,
    n.night_population,
    d.day_population
from night as n
left join day_monthly as d on n.district_code = d.district_code and n.month = d.month
