-- The pool's one spatial unit: H3 cells (resolution var('grid_resolution')) that any source places
-- something in inside the configured city, each with the county whose real boundary holds it
-- (int_spatial__grid_cells: polygon containing the cell centre, else at the city's edge the overlapping
-- county; cells outside every county are in int_spatial__outside_cells).
select
    cast(grid_id as {{ dbt.type_string() }}) as grid_id,
    cast(district_code as {{ dbt.type_string() }}) as district_code,
    cast(center_lng as double) as center_lng,
    cast(center_lat as double) as center_lat,
    cast({{ var('grid_resolution', 8) }} as integer) as resolution,
    cast(district_method as {{ dbt.type_string() }}) as district_method
from {{ ref('int_spatial__grid_cells') }}
