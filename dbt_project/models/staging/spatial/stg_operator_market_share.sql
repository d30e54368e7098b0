-- 运营商市场份额: subscriber share of each operator per district and month (telecom administration), the
-- weights of the operator fusion. Retired district codes are mapped to their current successor.
with source as (
    select * from {{ source('raw', 'operator_market_share') }}
),

crosswalk as (
    select code, maps_to from {{ source('reference', 'division_crosswalk') }}
),

renamed as (
    select
        nullif(trim(district_code), '') as district_code_delivered,
        upper(nullif(trim(operator), '')) as operator,
        try_cast(nullif(trim(subscriber_share), '') as double) as subscriber_share,
        try_cast(nullif(trim(month), '') || '-01' as date) as share_month,
        _source_file,
        _file_sha256,
        _row_number,
        _batch_id,
        _loaded_at
    from source
)

select
    renamed.district_code_delivered,
    crosswalk.maps_to as district_code,
    renamed.operator,
    renamed.subscriber_share,
    renamed.share_month,
    renamed._source_file,
    renamed._file_sha256,
    renamed._row_number,
    renamed._batch_id,
    renamed._loaded_at
from renamed
left join crosswalk on renamed.district_code_delivered = crosswalk.code
