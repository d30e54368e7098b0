{{ load_incremental_config('si_insured') }}
-- 社保参保人员: insurance enrolments (one row per person, employer and insurance type). The feed is read by
-- its updated_at cursor: one row per version read; int_people__si_insured_current keeps the latest. Built
-- load by load (macros/portable.sql): each night normalises only the versions it delivered (the alias
-- `delivered` is read by unseen_loads, on an incremental build).
with source as (
    select * from {{ source('raw', 'si_insured') }} as delivered  -- noqa: AL05
    {{ unseen_loads('si_insured', 'delivered') }}
),

renamed as (
    select
        nullif({{ halfwidth('insured_id') }}, '') as insured_id,
        {{ ric_normalize('id_number') }} as id_number,
        case when nullif(trim(id_number), '') is null then 'blank' else {{ ric_problem('id_number') }} end
            as id_number_problem,
        nullif({{ halfwidth('name') }}, '') as name,
        nullif({{ halfwidth('unit_id') }}, '') as unit_id,
        nullif({{ halfwidth('insurance_type') }}, '') as insurance_type,
        nullif({{ halfwidth('status') }}, '') as status,
        -- 'YYYYMM' -> first day of that month
        try_cast(
            substr({{ halfwidth('start_month') }}, 1, 4)
            || '-'
            || substr({{ halfwidth('start_month') }}, 5, 2)
            || '-01'
            as date
        ) as start_month,
        try_cast(nullif({{ halfwidth('monthly_base') }}, '') as decimal(12, 2)) as monthly_base,
        {{ shanghai_timestamp(halfwidth('updated_at')) }} as updated_at,
        {{ lineage_columns() }}
    from source
)

select * from renamed
