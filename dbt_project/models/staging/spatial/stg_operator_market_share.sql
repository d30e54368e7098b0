-- 运营商市场份额: subscriber share of each operator per district and month (telecom administration), the
-- weights of the operator fusion. Retired district codes are mapped to their current successor.
with {{ staging_source('operator_market_share') }},

renamed as (
    select
        nullif(trim(district_code), '') as district_code_delivered,
        upper(nullif(trim(operator), '')) as operator,
        try_cast(nullif(trim(subscriber_share), '') as double) as subscriber_share,
        try_cast(nullif(trim(month), '') || '-01' as date) as share_month,
        {{ lineage_columns() }}
    from source
)

select
    renamed.district_code_delivered,
    crosswalk.maps_to as district_code,
    renamed.operator,
    renamed.subscriber_share,
    renamed.share_month,
    {{ lineage_columns('renamed') }}
from renamed
left join crosswalk on renamed.district_code_delivered = crosswalk.code
