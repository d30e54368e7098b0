{{ config(materialized=udf_unpartitioned_materialization()) }}
-- 医疗机构: the health commission's monthly snapshot (.xlsx, GCJ-02), typed, with coordinates repaired and
-- converted to WGS-84. Every delivered row is kept; dim_facility takes the usable ones and
-- int_spatial__rejected_records counts the rest.
--   coords_swapped: the pair only makes sense swapped (delivered lng in China's latitude range and lat in
--                   its longitude range), so it is swapped back;
--   outside_city:   the repaired point converts to nowhere in China, or lies in no grid cell of a configured
--                   county (reference.county_cells, from the county polygons); lng/lat are then null.
with {{ staging_source('medical_facilities') }},

{{ city_counties() }},

renamed as (
    select
        nullif({{ halfwidth('facility_id') }}, '') as facility_id,
        nullif({{ halfwidth('name') }}, '') as name,
        nullif({{ halfwidth('category') }}, '') as category,
        nullif({{ halfwidth('grade') }}, '') as grade,
        nullif({{ halfwidth('district_code') }}, '') as district_code_delivered,
        nullif({{ halfwidth('address') }}, '') as address,
        try_cast(nullif({{ halfwidth('lng_gcj02') }}, '') as double) as lng_delivered,
        try_cast(nullif({{ halfwidth('lat_gcj02') }}, '') as double) as lat_delivered,
        try_cast(try_cast(nullif({{ halfwidth('beds') }}, '') as double) as integer) as beds,
        try_cast(try_cast(nullif({{ halfwidth('doctors') }}, '') as double) as integer) as doctors,
        try_cast(nullif({{ halfwidth('updated_on') }}, '') as date) as updated_on,
        {{ lineage_columns() }}
    from source
),

{{ located_points('gcj02') }}

select
    located.facility_id,
    located.name,
    located.category,
    located.grade,
    located.district_code_delivered,
    crosswalk.maps_to as district_code,
    located.address,
    located.lng_delivered as lng_gcj02_delivered,
    located.lat_delivered as lat_gcj02_delivered,
    {{ located_point_columns('located.lng_converted', 'located.lat_converted') }},
    located.beds,
    located.doctors,
    located.updated_on,
    {{ lineage_columns('located') }}
from located
left join crosswalk on located.district_code_delivered = crosswalk.code
