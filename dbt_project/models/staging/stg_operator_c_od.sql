-- 电信出行OD: operator C (CTCC) trips between districts per day, in the common OD shape of the three
-- operators. District codes are mapped to current codes (retired codes to their successor; codes of no
-- division of the city stay null). '<5' = suppressed: trips null, is_suppressed true.
with source as (
    select * from {{ source('raw', 'operator_c_od') }}
),

crosswalk as (
    select code, maps_to from {{ source('reference', 'division_crosswalk') }}
),

renamed as (
    select
        'CTCC' as operator,
        cast(_partition as date) as stat_date,
        nullif(trim(origin), '') as origin_code_delivered,
        nullif(trim(destination), '') as destination_code_delivered,
        {{ count_or_null('volume') }} as trips,
        coalesce({{ suppressed_flag('volume') }}, false) as is_suppressed,
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
