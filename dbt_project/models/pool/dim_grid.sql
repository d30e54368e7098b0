-- The pool's one spatial unit: H3 cells (resolution var('grid_resolution')) that any source places
-- something in, each with its district (int_spatial__grid_cells: nearest district-labelled point, else
-- nearest county centroid).
select
    cast(grid_id as {{ dbt.type_string() }}) as grid_id,
    cast(district_code as {{ dbt.type_string() }}) as district_code,
    cast(center_lng as double) as center_lng,
    cast(center_lat as double) as center_lat,
    cast({{ var('grid_resolution', 8) }} as integer) as resolution,
    cast(district_method as {{ dbt.type_string() }}) as district_method
from {{ ref('int_spatial__grid_cells') }}
