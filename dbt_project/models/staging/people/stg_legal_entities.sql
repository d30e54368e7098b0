{{ config(materialized=udf_unpartitioned_materialization()) }}
-- 法人库: market regulation's full registry snapshot, typed and normalised. Every delivered row is kept;
-- int_identity__enterprises keeps one per valid USCC. registered_capital arrives as 万元 numbers or as
-- text such as '500万元' / '1,200万' / '2亿元' / '800000元'; it is parsed to a number of 万元.
with {{ staging_source('legal_entities') }},

renamed as (
    select
        {{ uscc_normalize('uscc') }} as uscc,
        case when nullif(trim(uscc), '') is null then 'blank' else {{ uscc_problem('uscc') }} end
            as uscc_problem,
        nullif({{ halfwidth('name') }}, '') as name,
        nullif({{ halfwidth('legal_representative') }}, '') as legal_representative,
        nullif({{ halfwidth('entity_type') }}, '') as entity_type,
        nullif({{ halfwidth('registered_capital') }}, '') as registered_capital_delivered,
        try_cast(nullif({{ halfwidth('established_on') }}, '') as date) as established_on,
        nullif({{ halfwidth('district_code') }}, '') as district_code_delivered,
        upper(nullif({{ halfwidth('industry_code') }}, '')) as industry_code,
        nullif({{ halfwidth('status') }}, '') as status,
        nullif({{ halfwidth('address') }}, '') as address,
        {{ shanghai_timestamp(halfwidth('updated_at')) }} as updated_at,
        {{ lineage_columns() }}
    from source
),

capital as (
    select
        renamed.*,
        -- the number without separators, currency words and unit
        try_cast(
            {{ remove_all('registered_capital_delivered', ['人民币', '万', '亿', '元', ',', ' ']) }} as double
        ) as capital_number,
        case
            when registered_capital_delivered like '%亿%' then 10000.0
            when registered_capital_delivered like '%万%' then 1.0
            when registered_capital_delivered like '%元' then 0.0001
            else 1.0  -- a bare number is already 万元 (the catalog's unit)
        end as capital_unit_wan
    from renamed
),

-- A split or transferred code goes by the township (乡镇街道) its address names (macros/divisions.sql).
township as (
    {{ township_successors('renamed', 'district_code_delivered', 'address') }}
)

select
    uscc,
    uscc_problem,
    name,
    legal_representative,
    entity_type,
    registered_capital_delivered,
    capital_number * capital_unit_wan as registered_capital_wan,
    established_on,
    district_code_delivered,
    coalesce(township.maps_to, crosswalk.maps_to) as district_code,
    industry_code,
    status,
    address,
    updated_at,
    {{ lineage_columns() }}
from capital
left join crosswalk on capital.district_code_delivered = crosswalk.code
left join township
    on capital.district_code_delivered = township.code
    and capital.address = township.text
