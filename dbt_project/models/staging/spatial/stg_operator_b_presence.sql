-- 联通信令人口: operator B (CUCC) subscribers present per 500 m GCJ-02 grid square and hour, in the common
-- presence shape. The grid id '<col>_<row>' (col = floor((lng-73)/0.005), row = floor((lat-18)/0.0045) on
-- GCJ-02) gives the square's centre 73 + (col+0.5)*0.005, 18 + (row+0.5)*0.0045 (GCJ-02);
-- int_spatial__operator_units converts it to WGS-84 and H3 once per square. Masked counts (is_masked = 1)
-- are suppressed: user_count null, is_suppressed true. (split_part: '' past the last part on both engines;
-- dbt.split_part indexes an array, which Spark's ANSI mode rejects out of range.)
with source as (
    select * from {{ source('raw', 'operator_b_presence') }}
),

renamed as (
    select
        {{ operator_code('operator_b_presence') }} as operator,
        nullif(trim(grid_id), '') as unit_id,
        {{ shanghai_timestamp(
            "substr(trim(stat_date), 1, 4) || '-' || substr(trim(stat_date), 5, 2) || '-' || substr(trim(stat_date), 7, 2)"
            ~ " || ' ' || lpad(trim(hour), 2, '0') || ':00:00'") }} as hour_start,
        try_cast(
            substr(trim(stat_date), 1, 4)
            || '-'
            || substr(trim(stat_date), 5, 2)
            || '-'
            || substr(trim(stat_date), 7, 2) as date
        ) as stat_date,
        case when coalesce(trim(is_masked), '0') <> '1' then {{ count_or_null('pop') }} end as user_count,
        coalesce(trim(is_masked) = '1', false) as is_suppressed,
        73 + (try_cast(split_part(trim(grid_id), '_', 1) as integer) + 0.5) * 0.005 as center_lng_gcj02,
        18 + (try_cast(split_part(trim(grid_id), '_', 2) as integer) + 0.5) * 0.0045 as center_lat_gcj02,
        cast(_partition as date) as partition_date,
        {{ lineage_columns() }}
    from source
)

select * from renamed
