-- 移动信令人口: operator A (CMCC) subscribers present per H3 cell (resolution 8, WGS-84) and hour, in the
-- common presence shape of the three operators. '<5' = suppressed: user_count null, is_suppressed true.
-- The H3 index is checked (valid, resolution var('grid_resolution')) in int_spatial__operator_units.
with source as (
    select * from {{ source('raw', 'operator_a_presence') }}
),

renamed as (
    select
        {{ operator_code('operator_a_presence') }} as operator,
        lower(nullif(trim(h3_index), '')) as unit_id,
        {{ shanghai_timestamp("trim(stat_hour) || ':00:00'") }} as hour_start,
        try_cast(substr(trim(stat_hour), 1, 10) as date) as stat_date,
        {{ count_or_null('user_cnt') }} as user_count,
        coalesce({{ suppressed_flag('user_cnt') }}, false) as is_suppressed,
        cast(_partition as date) as partition_date,
        {{ lineage_columns() }}
    from source
)

select * from renamed
