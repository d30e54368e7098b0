{{ config(materialized=udf_view_materialization()) }}
-- 政务服务办件: one CSV per day with the applications submitted that day as they stood at its end.
-- applicant_id is a resident ID or a USCC: both validators run here, the pool decides which one accepts.
with {{ staging_source('egov_applications') }},

renamed as (
    select
        nullif({{ halfwidth('application_id') }}, '') as application_id,
        nullif({{ halfwidth('service_code') }}, '') as service_code,
        nullif({{ halfwidth('service_name') }}, '') as service_name,
        nullif({{ halfwidth('applicant_type') }}, '') as applicant_type,
        {{ ric_normalize('applicant_id') }} as applicant_resident_id,
        case
            when nullif(trim(applicant_id), '') is null then 'blank'
            else {{ ric_problem('applicant_id') }}
        end as applicant_id_ric_problem,
        {{ uscc_normalize('applicant_id') }} as applicant_uscc,
        case
            when nullif(trim(applicant_id), '') is null then 'blank'
            else {{ uscc_problem('applicant_id') }}
        end as applicant_id_uscc_problem,
        {{ shanghai_timestamp(halfwidth('submitted_at')) }} as submitted_at,
        nullif({{ halfwidth('channel') }}, '') as channel,
        try_cast(nullif({{ halfwidth('visits') }}, '') as integer) as visits,
        {{ shanghai_timestamp(halfwidth('completed_at')) }} as completed_at,
        nullif({{ halfwidth('district_code') }}, '') as district_code_delivered,
        case upper({{ halfwidth('cross_region') }}) when 'Y' then true when 'N' then false end
            as cross_region,
        nullif({{ halfwidth('status') }}, '') as status,
        cast(_partition as date) as partition_date,
        {{ lineage_columns() }}
    from source
)

{{ select_with_district_code() }}
