-- Every H3 cell (resolution var('grid_resolution')) that any source places something in, with its district.
-- There are no district polygons, so a cell takes the district of the nearest district-labelled point
-- within var('grid_label_radius_m', 5000) m of its centre: operator C's base-station cells, medical
-- facilities and schools, each delivered with the district it belongs to (district_method 'nearest_labelled_point').
-- Farther from every labelled point, the nearest configured county centroid decides ('nearest_county_centroid').
-- Candidate points are found through 0.05-degree buckets (the cell's bucket and its eight neighbours, at
-- least ~4.8 km in every direction), an equi-join instead of a cross join.
with cells as (
    select grid_id from {{ ref('int_spatial__operator_units') }} where grid_id is not null
    union
    select grid_id from {{ ref('stg_medical_facilities') }} where grid_id is not null
    union
    select grid_id from {{ ref('stg_schools') }} where grid_id is not null
),

centres as (
    select
        grid_id,
        {{ grid_cell_lng('grid_id') }} as center_lng,
        {{ grid_cell_lat('grid_id') }} as center_lat
    from cells
),

labelled as (
    select district_code, lng, lat from {{ ref('stg_operator_c_cells') }}
    where district_code is not null and lng is not null
    union all
    select district_code, lng, lat from {{ ref('stg_medical_facilities') }}
    where district_code is not null and lng is not null
    union all
    select district_code, lng, lat from {{ ref('stg_schools') }}
    where district_code is not null and lng is not null
),

labelled_buckets as (
    select
        *,
        cast(floor(lat / 0.05) as integer) as bucket_lat,
        cast(floor(lng / 0.05) as integer) as bucket_lng
    from labelled
),

offsets as (
    select d_lat, d_lng
    from (select -1 as d_lat union all select 0 union all select 1) as r
    cross join (select -1 as d_lng union all select 0 union all select 1) as c
),

centre_buckets as (
    select
        centres.grid_id,
        centres.center_lng,
        centres.center_lat,
        cast(floor(centres.center_lat / 0.05) as integer) + offsets.d_lat as bucket_lat,
        cast(floor(centres.center_lng / 0.05) as integer) + offsets.d_lng as bucket_lng
    from centres
    cross join offsets
),

point_candidates as (
    select
        centre_buckets.grid_id,
        labelled_buckets.district_code,
        {{ distance_m('centre_buckets.center_lat', 'centre_buckets.center_lng', 'labelled_buckets.lat', 'labelled_buckets.lng') }} as distance_m
    from centre_buckets
    inner join labelled_buckets
        on centre_buckets.bucket_lat = labelled_buckets.bucket_lat
        and centre_buckets.bucket_lng = labelled_buckets.bucket_lng
),

nearest_point as (
    select grid_id, district_code, distance_m
    from (
        select
            *,
            row_number() over (partition by grid_id order by distance_m, district_code) as rank_by_distance
        from point_candidates
        where distance_m <= {{ var('grid_label_radius_m', 5000) }}
    ) as ranked
    where rank_by_distance = 1
),

counties as (
    select cast(code as {{ dbt.type_string() }}) as district_code, cast(lng as double) as lng, cast(lat as double) as lat
    from {{ source('reference', 'city_counties') }}
),

nearest_centroid as (
    select grid_id, district_code, distance_m
    from (
        select
            centres.grid_id,
            counties.district_code,
            {{ distance_m('centres.center_lat', 'centres.center_lng', 'counties.lat', 'counties.lng') }} as distance_m,
            row_number() over (
                partition by centres.grid_id
                order by {{ distance_m('centres.center_lat', 'centres.center_lng', 'counties.lat', 'counties.lng') }}, counties.district_code
            ) as rank_by_distance
        from centres
        cross join counties
    ) as ranked
    where rank_by_distance = 1
)

select
    centres.grid_id,
    centres.center_lng,
    centres.center_lat,
    coalesce(nearest_point.district_code, nearest_centroid.district_code) as district_code,
    case when nearest_point.district_code is not null then 'nearest_labelled_point' else 'nearest_county_centroid' end as district_method,
    coalesce(nearest_point.distance_m, nearest_centroid.distance_m) as district_distance_m
from centres
left join nearest_point on centres.grid_id = nearest_point.grid_id
left join nearest_centroid on centres.grid_id = nearest_centroid.grid_id
