-- 电信信令人口: operator C (CTCC) subscribers present per base-station cell and hour, in the common presence
-- shape; the cell's place comes from stg_operator_c_cells. '<5' = suppressed: user_count null,
-- is_suppressed true. time_slot is ISO 8601 with +08:00, so its first ten characters are the
-- Asia/Shanghai date.
with source as (
    select * from {{ source('raw', 'operator_c_presence') }}
),

renamed as (
    select
        {{ operator_code('operator_c_presence') }} as operator,
        nullif(trim(cell_id), '') as unit_id,
        {{ shanghai_timestamp('time_slot') }} as hour_start,
        try_cast(substr(trim(time_slot), 1, 10) as date) as stat_date,
        {{ count_or_null('users') }} as user_count,
        coalesce({{ suppressed_flag('users') }}, false) as is_suppressed,
        cast(_partition as date) as partition_date,
        {{ lineage_columns() }}
    from source
)

select * from renamed
