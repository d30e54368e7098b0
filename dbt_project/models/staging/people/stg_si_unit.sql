{{ config(materialized=udf_unpartitioned_materialization()) }}
-- 社保参保单位: employers from the HR & social security database. The feed is incremental on updated_at,
-- so a unit has one row per version read; int_people__si_units_current keeps the latest.
with {{ staging_source('si_unit') }},

renamed as (
    select
        nullif({{ halfwidth('unit_id') }}, '') as unit_id,
        {{ uscc_normalize('uscc') }} as uscc,
        case when nullif(trim(uscc), '') is null then 'blank' else {{ uscc_problem('uscc') }} end
            as uscc_problem,
        nullif({{ halfwidth('unit_name') }}, '') as unit_name,
        nullif({{ halfwidth('district_code') }}, '') as district_code_delivered,
        nullif({{ halfwidth('status') }}, '') as status,
        {{ shanghai_timestamp(halfwidth('updated_at')) }} as updated_at,
        {{ lineage_columns() }}
    from source
)

{{ select_with_district_code() }}
