-- 联通出行OD: operator B (CUCC) trips between districts per day, in the common OD shape of the three
-- operators. District codes are mapped to current codes (retired codes to their successor; codes of no
-- division of the city stay null). '<5' = suppressed: trips null, is_suppressed true.
with source as (
    select * from {{ source('raw', 'operator_b_od') }}
),

crosswalk as (
    select code, maps_to from {{ source('reference', 'division_crosswalk') }}
),

renamed as (
    select
        'CUCC' as operator,
        try_cast(substr(trim(stat_date), 1, 4) || '-' || substr(trim(stat_date), 5, 2) || '-' || substr(trim(stat_date), 7, 2) as date) as stat_date,
        nullif(trim(origin_district), '') as origin_code_delivered,
        nullif(trim(dest_district), '') as destination_code_delivered,
        {{ count_or_null('trips') }} as trips,
        coalesce({{ suppressed_flag('trips') }}, false) as is_suppressed,
        cast(_partition as date) as partition_date,
        _source_file,
        _file_sha256,
        _row_number,
        _batch_id,
        _loaded_at
    from source
)

select
    renamed.operator,
    renamed.stat_date,
    renamed.origin_code_delivered,
    renamed.destination_code_delivered,
    origin.maps_to as origin_district_code,
    destination.maps_to as destination_district_code,
    renamed.trips,
    renamed.is_suppressed,
    renamed.partition_date,
    renamed._source_file,
    renamed._file_sha256,
    renamed._row_number,
    renamed._batch_id,
    renamed._loaded_at
from renamed
left join crosswalk as origin on renamed.origin_code_delivered = origin.code
left join crosswalk as destination on renamed.destination_code_delivered = destination.code
