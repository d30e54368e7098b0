-- Telecom-estimated night-time residents per grid and month: the mean over the month's days of the
-- mean fused presence in the night hours (var night_hours). The denominator of per-resident indicators.
with presence as (
    select
        grid_id,
        stat_date,
        {{ shanghai_hour('hour_start') }} as local_hour,
        est_population
    from {{ ref('fct_presence_hourly') }}
),

nightly as (
    select grid_id, stat_date, avg(est_population) as night_population
    from presence
    where local_hour in ({{ var('night_hours') | join(', ') }})
    group by grid_id, stat_date
)

select
    grid_id,
    cast({{ dbt.date_trunc('month', 'stat_date') }} as date) as month,
    avg(night_population) as night_population
from nightly
group by grid_id, cast({{ dbt.date_trunc('month', 'stat_date') }} as date)
