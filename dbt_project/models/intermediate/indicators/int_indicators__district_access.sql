-- Per district and month: the share of estimated night-time residents whose grid centre lies within
-- var('access_radius_m') of a medical facility (hospital or primary care) and of a primary school.
-- Computed over the published cells of the open fct_presence_hourly (night hours, small cells and their
-- complements left out): a share of the true totals, times the published district total, would give the
-- sum over the near grids, a second margin whose hidden cells could be recovered (docs/GOVERNANCE.md).
with grids as (
    select grid_id, district_code, center_lat, center_lng from {{ ref('dim_grid') }}
),

facilities as (
    select
        lat,
        lng,
        case
            when
                facility_type in ('hospital', 'community_health_centre', 'clinic', 'township_health_centre')
                then 'medical'
            when facility_type in ('primary_school', 'nine_year_school') then 'primary_school'
        end as access_kind
    from {{ ref('dim_facility') }}
    where lat is not null and lng is not null
),

nearest as (
    select
        g.grid_id,
        min(
            case
                when
                    f.access_kind = 'medical'
                    then {{ distance_m('g.center_lat', 'g.center_lng', 'f.lat', 'f.lng') }}
            end
        ) as medical_m,
        min(
            case
                when
                    f.access_kind = 'primary_school'
                    then {{ distance_m('g.center_lat', 'g.center_lng', 'f.lat', 'f.lng') }}
            end
        ) as school_m
    from grids as g
    cross join facilities as f
    where f.access_kind is not null
    group by g.grid_id
),

published_night as (
    -- person-hours of the published night cells per grid and month (a constant factor away from residents)
    select
        grid_id,
        cast({{ dbt.date_trunc('month', 'stat_date') }} as date) as month,
        sum(est_population) as night_population
    from {{ ref('fct_presence_hourly') }}
    where not est_population_suppressed
        and {{ shanghai_hour('hour_start') }} in ({{ var('night_hours') | join(', ') }})
    group by grid_id, cast({{ dbt.date_trunc('month', 'stat_date') }} as date)
),

weighted as (
    select
        g.district_code,
        n.month,
        n.night_population,
        coalesce(d.medical_m <= {{ var('access_radius_m') }}, false) as near_medical,
        coalesce(d.school_m <= {{ var('access_radius_m') }}, false) as near_school
    from published_night as n
    inner join grids as g on n.grid_id = g.grid_id
    left join nearest as d on n.grid_id = d.grid_id
)

select
    district_code,
    month,
    sum(case when near_medical then night_population else 0 end)
    / nullif(sum(night_population), 0) as share_near_medical,
    sum(case when near_school then night_population else 0 end)
    / nullif(sum(night_population), 0) as share_near_primary_school
from weighted
group by district_code, month
