-- The configured city's county-level districts (current GB/T 2260 codes) with WGS-84 centroids.
with counties as (
    select * from {{ source('reference', 'city_counties') }}
),

renamed as (
    select
        cast(code as {{ dbt.type_string() }}) as district_code,
        cast(name as {{ dbt.type_string() }}) as district_name,
        cast(city_code as {{ dbt.type_string() }}) as city_code,
        cast(city_name as {{ dbt.type_string() }}) as city_name,
        cast(province_code as {{ dbt.type_string() }}) as province_code,
        cast(province_name as {{ dbt.type_string() }}) as province_name,
        cast(lng as double) as centroid_lng,
        cast(lat as double) as centroid_lat,
        cast(centroid_source as {{ dbt.type_string() }}) as centroid_source
    from counties
)

select * from renamed
