-- The cells some source places something in that lie in no county of the configured city (no county polygon
-- holds their centre or overlaps them, reference.county_cells): no district (district_method 'outside_city'),
-- kept out of dim_grid and so out of every district total, and counted here with the operator units in them.
with county_cells as (
    select cast(grid_id as {{ dbt.type_string() }}) as grid_id
    from {{ source('reference', 'county_cells') }}
    where resolution = {{ var('grid_resolution', 8) }}
),

operator_units as (
    select grid_id, count(*) as operator_units
    from {{ ref('int_spatial__operator_units') }}
    where grid_id is not null
    group by grid_id
)

select
    placed.grid_id,
    {{ grid_cell_lng('placed.grid_id') }} as center_lng,
    {{ grid_cell_lat('placed.grid_id') }} as center_lat,
    cast(null as {{ dbt.type_string() }}) as district_code,
    'outside_city' as district_method,
    coalesce(operator_units.operator_units, 0) as operator_units
from {{ ref('int_spatial__placed_cells') }} as placed
left join county_cells on placed.grid_id = county_cells.grid_id
left join operator_units on placed.grid_id = operator_units.grid_id
where county_cells.grid_id is null
