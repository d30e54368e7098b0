-- Every operator spatial unit placed on the pool grid, computed once per unit (not per hourly row):
--   CMCC: the delivered H3 index, kept when it is a valid cell of resolution var('grid_resolution')
--         (its centre maps back to itself at that resolution);
--   CUCC: the 500 m GCJ-02 square's centre converted to WGS-84, then its H3 cell;
--   CTCC: the base-station cell's WGS-84 position (stg_operator_c_cells), then its H3 cell.
-- grid_id is null, with the reason in `problem`, for a unit that cannot be placed.
with a_units as (
    select distinct unit_id from {{ ref('stg_operator_a_presence') }} where unit_id is not null
),

a_centres as (
    select
        unit_id,
        {{ grid_cell_lng('unit_id') }} as lng,
        {{ grid_cell_lat('unit_id') }} as lat
    from a_units
),

a_placed as (
    select
        'CMCC' as operator,
        unit_id,
        lng,
        lat,
        case when lat is not null and {{ grid_cell('lat', 'lng') }} = unit_id then unit_id end as grid_id,
        cast(null as {{ dbt.type_string() }}) as district_code,
        case
            when lat is null then 'invalid_h3_index'
            when {{ grid_cell('lat', 'lng') }} <> unit_id then 'wrong_h3_resolution'
        end as problem
    from a_centres
),

b_units as (
    select distinct unit_id, center_lng_gcj02, center_lat_gcj02
    from {{ ref('stg_operator_b_presence') }}
    where unit_id is not null
),

b_converted as (
    select
        unit_id,
        {{ gcj02_to_wgs84_lng('center_lng_gcj02', 'center_lat_gcj02') }} as lng,
        {{ gcj02_to_wgs84_lat('center_lng_gcj02', 'center_lat_gcj02') }} as lat
    from b_units
),

b_placed as (
    select
        'CUCC' as operator,
        unit_id,
        lng,
        lat,
        {{ grid_cell('lat', 'lng') }} as grid_id,
        cast(null as {{ dbt.type_string() }}) as district_code,
        case when lng is null then 'invalid_grid_id' end as problem
    from b_converted
),

c_cells as (
    select
        *,
        row_number() over (partition by cell_id order by _loaded_at desc, _row_number desc) as version
    from {{ ref('stg_operator_c_cells') }}
    where cell_id is not null
),

c_placed as (
    select
        'CTCC' as operator,
        cell_id as unit_id,
        lng,
        lat,
        grid_id,
        district_code,
        case
            when outside_city then 'outside_city'
            when grid_id is null then 'missing_coordinates'
        end as problem
    from c_cells
    where version = 1
)

select * from a_placed
union all
select * from b_placed
union all
select * from c_placed
