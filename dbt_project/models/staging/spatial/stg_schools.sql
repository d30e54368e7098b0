{{ config(materialized=udf_unpartitioned_materialization()) }}
-- 学校: the education bureau's termly snapshot (CSV with BOM, BD-09), typed, with coordinates repaired and
-- converted to WGS-84 (same rules as stg_medical_facilities):
--   coords_swapped: the pair only makes sense swapped (lng in China's latitude range and lat in its
--                   longitude range), so it is swapped back;
--   outside_city:   converts to nowhere in China, or lies in no grid cell of a configured county
--                   (reference.county_cells, from the county polygons); lng/lat are then null;
--   enrolment_over_capacity: more pupils than approved seats (kept as delivered, flagged).
with {{ staging_source('schools') }},

{{ city_counties() }},

renamed as (
    select
        nullif({{ halfwidth('school_id') }}, '') as school_id,
        nullif({{ halfwidth('name') }}, '') as name,
        nullif({{ halfwidth('stage') }}, '') as stage,
        nullif({{ halfwidth('district_code') }}, '') as district_code_delivered,
        nullif({{ halfwidth('address') }}, '') as address,
        try_cast(nullif({{ halfwidth('lng_bd09') }}, '') as double) as lng_delivered,
        try_cast(nullif({{ halfwidth('lat_bd09') }}, '') as double) as lat_delivered,
        try_cast(try_cast(nullif({{ halfwidth('capacity') }}, '') as double) as integer) as capacity,
        try_cast(try_cast(nullif({{ halfwidth('enrolment') }}, '') as double) as integer) as enrolment,
        nullif({{ halfwidth('term') }}, '') as term,
        {{ lineage_columns() }}
    from source
),

{{ located_points('bd09') }}

select
    located.school_id,
    located.name,
    located.stage,
    located.district_code_delivered,
    crosswalk.maps_to as district_code,
    located.address,
    located.lng_delivered as lng_bd09_delivered,
    located.lat_delivered as lat_bd09_delivered,
    {{ located_point_columns('located.lng_converted', 'located.lat_converted') }},
    located.capacity,
    located.enrolment,
    coalesce(located.enrolment > located.capacity, false) as enrolment_over_capacity,
    located.term,
    {{ lineage_columns('located') }}
from located
left join crosswalk on located.district_code_delivered = crosswalk.code
