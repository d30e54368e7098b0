{#-
  The CTEs that turn delivered coordinates into located WGS-84 points, shared by the staging models of
  point feeds. Expects a CTE `renamed` with lng_delivered / lat_delivered (in `crs`: 'gcj02' or 'bd09'),
  _row_number and _file_sha256, and a CTE `counties` (lng, lat of the city's county centroids: city_counties()
  below); defines
    repaired        coords_swapped: a pair that only makes sense swapped (lat in the lng range and back);
    converted       lng_converted / lat_converted in WGS-84 (null outside China);
    nearest_county  distance to the nearest county centroid (information only: it decides nothing);
    in_city         the points whose grid cell is a cell of a configured county (reference.county_cells:
                    the county polygons, with one cell of tolerance at the city's edge);
    located         outside_city: a delivered position that converts to nowhere in China or lies in no
                    county of the city.
-#}
{% macro located_points(crs) %}
{%- set lng = 'case when coords_swapped then lat_delivered else lng_delivered end' -%}
{%- set lat = 'case when coords_swapped then lng_delivered else lat_delivered end' -%}
repaired as (
    select
        *,
        {{ coords_swapped() }} as coords_swapped
    from renamed
),

converted as (
    select
        *,
        {% if crs == 'gcj02' -%}
        {{ gcj02_to_wgs84_lng(lng, lat) }} as lng_converted,
        {{ gcj02_to_wgs84_lat(lng, lat) }} as lat_converted
        {%- elif crs == 'bd09' -%}
        {{ bd09_to_wgs84_lng(lng, lat) }} as lng_converted,
        {{ bd09_to_wgs84_lat(lng, lat) }} as lat_converted
        {%- else -%}
        {{ exceptions.raise_compiler_error("located_points: crs must be 'gcj02' or 'bd09', not " ~ crs) }}
        {%- endif %}
    from repaired
),

nearest_county as (
    select
        converted._row_number,
        converted._file_sha256,
        min({{ distance_m('converted.lat_converted', 'converted.lng_converted', 'counties.lat', 'counties.lng') }}) as nearest_county_m
    from converted
    cross join counties
    where converted.lng_converted is not null
    group by converted._row_number, converted._file_sha256
),

in_city as (
    select converted._row_number, converted._file_sha256
    from converted
    {{ join_county_cells('converted.lat_converted', 'converted.lng_converted') }}
    where converted.lng_converted is not null
),

located as (
    select
        converted.*,
        nearest_county.nearest_county_m,
        lng_delivered is not null and lat_delivered is not null and in_city._row_number is null as outside_city
    from converted
    left join nearest_county
        on converted._row_number = nearest_county._row_number
        and converted._file_sha256 = nearest_county._file_sha256
    left join in_city
        on converted._row_number = in_city._row_number
        and converted._file_sha256 = in_city._file_sha256
)
{% endmacro %}


{#- In the city: the point's grid cell is a cell of a configured county (reference.county_cells: the county
    polygons with one cell of tolerance at the edge, citybrain/reference/boundaries.py). The one place of the
    rule, for every feed that delivers positions. -#}
{% macro join_county_cells(lat, lng) -%}
    inner join {{ source('reference', 'county_cells') }} as county_cells
        on {{ grid_cell(lat, lng) }} = county_cells.grid_id
        and county_cells.resolution = {{ var('grid_resolution', 8) }}
{%- endmacro %}


{#- The city's county centroids (lng, lat as doubles) as the CTE `counties`, which nearest_county measures
    against. No trailing comma. -#}
{% macro city_counties() -%}
counties as (
    select cast(lng as double) as lng, cast(lat as double) as lat
    from {{ source('reference', 'city_counties') }}
)
{%- endmacro %}


{#- The located-point columns of a point feed's staging model, over the CTE `located` (located_points(), or
    a model's own for WGS-84 feeds): coords_swapped, outside_city (never null), lng / lat / grid_id of the
    point (`lng`, `lat`: its WGS-84 columns), null when it lies outside the city, and nearest_county_m. -#}
{% macro located_point_columns(lng, lat) -%}
located.coords_swapped,
coalesce(located.outside_city, false) as outside_city,
case when not coalesce(located.outside_city, false) then {{ lng }} end as lng,
case when not coalesce(located.outside_city, false) then {{ lat }} end as lat,
case
    when
        not coalesce(located.outside_city, false)
        then {{ grid_cell(lat, lng) }}
end as grid_id,
located.nearest_county_m
{%- endmacro %}


{#- A delivered pair that only makes sense swapped: lng in China's latitude range and lat in its longitude
    range (never null). The one place of the rule, for every point feed (over lng_delivered, lat_delivered). -#}
{% macro coords_swapped() -%}
coalesce(lng_delivered between 18 and 54 and lat_delivered between 73 and 136, false)
{%- endmacro %}
