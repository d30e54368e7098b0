-- Hospitals and clinics (health commission), schools (education bureau) and operator C's base stations in
-- WGS-84 with district and grid cell. Points outside the city stay, flagged, without coordinates or grid;
-- records without a key or usable coordinates are left out and counted in int_spatial__rejected_records.
-- A key delivered twice keeps the latest load.
with medical as (
    select
        'medical:' || facility_id as facility_key,
        'medical_facilities' as source,
        coalesce(kind.code, 'other_medical') as facility_type,
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
    -- the health commission's categories, mapped in the catalog (sources.yaml vocabularies)
    left join {{ source('reference', 'vocabularies') }} as kind
        on kind.feed_id = 'medical_facilities' and kind.column_name = 'category' and kind.value = category
    where facility_id is not null and (lng is not null or outside_city)
),

schools as (
    select
        'school:' || school_id as facility_key,
        'schools' as source,
        coalesce(kind.code, 'other_school') as facility_type,
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
    left join {{ source('reference', 'vocabularies') }} as kind
        on kind.feed_id = 'schools' and kind.column_name = 'stage' and kind.value = stage
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
