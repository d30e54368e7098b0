-- Every H3 cell (resolution var('grid_resolution')) that any source places something in: operator presence
-- units, medical facilities, schools and base stations. int_spatial__grid_cells keeps those inside the
-- city's counties, int_spatial__outside_cells reports the others.
select grid_id from {{ ref('int_spatial__operator_units') }} where grid_id is not null
union
select grid_id from {{ ref('stg_medical_facilities') }} where grid_id is not null
union
select grid_id from {{ ref('stg_schools') }} where grid_id is not null
