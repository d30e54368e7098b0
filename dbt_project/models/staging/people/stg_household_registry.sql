{{ config(materialized=udf_unpartitioned_materialization()) }}
-- 户籍人口: the police's full registry snapshot, typed and normalised. Every delivered row is kept
-- (duplicates and invalid IDs too): int_identity__residents deduplicates, int_identity__rejected_identifiers
-- counts what fails validation. Raw PII (name, address, phone) stays in this restricted layer.
with {{ staging_source('household_registry') }},

renamed as (
    select
        {{ ric_normalize('id_number') }} as id_number,
        case when nullif(trim(id_number), '') is null then 'blank' else {{ ric_problem('id_number') }} end
            as id_number_problem,
        nullif({{ halfwidth('name') }}, '') as name,
        case {{ halfwidth('sex') }} when '男' then 'M' when '女' then 'F' end as sex,
        try_cast(nullif({{ halfwidth('birth_date') }}, '') as date) as birth_date,
        nullif({{ halfwidth('ethnicity') }}, '') as ethnicity,
        nullif({{ halfwidth('household_id') }}, '') as household_id,
        nullif({{ halfwidth('hukou_district') }}, '') as district_code_delivered,
        nullif({{ halfwidth('address') }}, '') as address,
        nullif({{ halfwidth('phone') }}, '') as phone,
        try_cast(nullif({{ halfwidth('registered_on') }}, '') as date) as registered_on,
        {{ lineage_columns() }}
    from source
),

-- A split or transferred code goes by the township (乡镇街道) its address names (macros/divisions.sql).
township as (
    {{ township_successors('renamed', 'district_code_delivered', 'address') }}
)

select
    renamed.*,
    coalesce(township.maps_to, crosswalk.maps_to) as district_code
from renamed
left join crosswalk on renamed.district_code_delivered = crosswalk.code
left join township
    on renamed.district_code_delivered = township.code
    and renamed.address = township.text
