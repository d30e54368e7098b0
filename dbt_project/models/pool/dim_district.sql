-- The configured city's county-level districts (current GB/T 2260 codes) with WGS-84 centroids.
with counties as (
    select * from {{ source('reference', 'city_counties') }}
),

renamed as (
    select
        cast(code as varchar) as district_code,
        cast(name as varchar) as district_name,
        cast(city_code as varchar) as city_code,
        cast(city_name as varchar) as city_name,
        cast(province_code as varchar) as province_code,
        cast(province_name as varchar) as province_name,
        cast(lng as double) as centroid_lng,
        cast(lat as double) as centroid_lat,
        cast(centroid_source as varchar) as centroid_source
    from counties
)

select * from renamed
