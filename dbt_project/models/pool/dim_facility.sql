-- Hospitals and clinics (health commission), schools (education bureau) and operator C's base stations in
-- WGS-84 with district and grid cell. Points outside the city stay, flagged, without coordinates or grid;
-- records without a key or usable coordinates are left out and counted in int_spatial__rejected_records.
-- A key delivered twice keeps the latest load.
with medical as (
    select
        'medical:' || facility_id as facility_key,
        'medical_facilities' as source,
        case category
            when '综合医院' then 'hospital'
            when '专科医院' then 'hospital'
            when '中医医院' then 'hospital'
            when '社区卫生服务中心' then 'community_health_centre'
            when '社区卫生服务站' then 'community_health_centre'
            when '卫生院' then 'township_health_centre'
            when '乡镇卫生院' then 'township_health_centre'
            when '诊所' then 'clinic'
            when '门诊部' then 'clinic'
            else 'other_medical'
        end as facility_type,
        category,
        name,
        district_code,
        lng,
        lat,
        grid_id,
        beds,
        doctors,
        cast(null as integer) as capacity,
        cast(null as integer) as enrolment,
        false as enrolment_over_capacity,
        coords_swapped,
        outside_city,
        _loaded_at,
        _row_number
    from {{ ref('stg_medical_facilities') }}
    where facility_id is not null and (lng is not null or outside_city)
),

schools as (
    select
        'school:' || school_id as facility_key,
        'schools' as source,
        case stage
            when '小学' then 'primary_school'
            when '初中' then 'junior_school'
            when '九年一贯制' then 'nine_year_school'
            when '高中' then 'high_school'
            when '完全中学' then 'high_school'
            else 'other_school'
        end as facility_type,
        stage as category,
        name,
        district_code,
        lng,
        lat,
        grid_id,
        cast(null as integer) as beds,
        cast(null as integer) as doctors,
        capacity,
        enrolment,
        enrolment_over_capacity,
        coords_swapped,
        outside_city,
        _loaded_at,
        _row_number
    from {{ ref('stg_schools') }}
    where school_id is not null and (lng is not null or outside_city)
),

stations as (
    select
        'station:' || cell_id as facility_key,
        'operator_c_cells' as source,
        'base_station' as facility_type,
        '基站小区' as category,
        cell_id as name,
        district_code,
        lng,
        lat,
        grid_id,
        cast(null as integer) as beds,
        cast(null as integer) as doctors,
        cast(null as integer) as capacity,
        cast(null as integer) as enrolment,
        false as enrolment_over_capacity,
        coords_swapped,
        outside_city,
        _loaded_at,
        _row_number
    from {{ ref('stg_operator_c_cells') }}
    where cell_id is not null and (lng is not null or outside_city)
),

facilities as (
    select * from medical
    union all
    select * from schools
    union all
    select * from stations
),

latest as (
    select
        *,
        row_number() over (partition by facility_key order by _loaded_at desc, _row_number desc) as version
    from facilities
)

select
    cast(latest.facility_key as {{ dbt.type_string() }}) as facility_key,
    cast(latest.source as {{ dbt.type_string() }}) as source,
    cast(latest.facility_type as {{ dbt.type_string() }}) as facility_type,
    cast(latest.category as {{ dbt.type_string() }}) as category,
    cast(latest.name as {{ dbt.type_string() }}) as name,
    cast(coalesce(latest.district_code, grid.district_code) as {{ dbt.type_string() }}) as district_code,
    cast(latest.lng as double) as lng,
    cast(latest.lat as double) as lat,
    cast(latest.grid_id as {{ dbt.type_string() }}) as grid_id,
    cast(latest.beds as integer) as beds,
    cast(latest.doctors as integer) as doctors,
    cast(latest.capacity as integer) as capacity,
    cast(latest.enrolment as integer) as enrolment,
    cast(latest.enrolment_over_capacity as boolean) as enrolment_over_capacity,
    cast(latest.coords_swapped as boolean) as coords_swapped,
    cast(latest.outside_city as boolean) as outside_city
from latest
left join {{ ref('int_spatial__grid_cells') }} as grid on latest.grid_id = grid.grid_id
where latest.version = 1
