{{ config(materialized=udf_unpartitioned_materialization()) }}
-- 电信基站小区表: operator C's base-station cells (WGS-84), the spatial key of its presence counts. Swapped
-- pairs are repaired and points outside the city nulled by the same rules as stg_medical_facilities.
with {{ staging_source('operator_c_cells') }},

{{ city_counties() }},

renamed as (
    select
        nullif(trim(cell_id), '') as cell_id,
        try_cast(nullif(trim(lng), '') as double) as lng_delivered,
        try_cast(nullif(trim(lat), '') as double) as lat_delivered,
        nullif(trim(district_code), '') as district_code_delivered,
        try_cast(try_cast(nullif(trim(coverage_radius_m), '') as double) as integer) as coverage_radius_m,
        {{ lineage_columns() }}
    from source
),

repaired as (
    select
        *,
        {{ coords_swapped() }} as coords_swapped
    from renamed
),

oriented as (
    select
        *,
        case when coords_swapped then lat_delivered else lng_delivered end as lng_repaired,
        case when coords_swapped then lng_delivered else lat_delivered end as lat_repaired
    from repaired
),

nearest_county as (
    select
        oriented._row_number,
        oriented._file_sha256,
        min(
            {{ distance_m('oriented.lat_repaired', 'oriented.lng_repaired', 'counties.lat', 'counties.lng') }}
        ) as nearest_county_m
    from oriented
    cross join counties
    where oriented.lng_repaired is not null and oriented.lat_repaired is not null
    group by oriented._row_number, oriented._file_sha256
),

-- In the city: the repaired point's grid cell is a cell of a configured county (macros/located_points.sql).
in_city as (
    select oriented._row_number, oriented._file_sha256
    from oriented
    {{ join_county_cells('oriented.lat_repaired', 'oriented.lng_repaired') }}
    where oriented.lng_repaired between 73 and 136 and oriented.lat_repaired between 18 and 54
),

located as (
    select
        oriented.*,
        nearest_county.nearest_county_m,
        lng_repaired is not null and lat_repaired is not null and in_city._row_number is null as outside_city
    from oriented
    left join nearest_county
        on oriented._row_number = nearest_county._row_number
        and oriented._file_sha256 = nearest_county._file_sha256
    left join in_city
        on oriented._row_number = in_city._row_number
        and oriented._file_sha256 = in_city._file_sha256
)

select
    located.cell_id,
    located.district_code_delivered,
    crosswalk.maps_to as district_code,
    located.lng_delivered,
    located.lat_delivered,
    {{ located_point_columns('located.lng_repaired', 'located.lat_repaired') }},
    located.coverage_radius_m,
    {{ lineage_columns('located') }}
from located
left join crosswalk on located.district_code_delivered = crosswalk.code
