{{ daily_incremental_config('submitted_date') }}
-- E-government service applications (办件), one row per application, partitioned by the day submitted
-- (the delivery's day partition). The applicant is a person when the resident-ID validator accepts
-- applicant_id and an organisation when the USCC validator does (a string both accept follows the
-- declared applicant type); applicants neither accepts are excluded and counted in
-- int_identity__rejected_identifiers. Persons are keyed by pseudonym, organisations by USCC.
with applications as (
    select
        *,
        coalesce(partition_date, cast(submitted_at as date)) as submitted_date
    from {{ ref('stg_egov_applications') }}
    where application_id is not null
),

windowed as (
    select * from applications
    where true {{ partition_window('submitted_date') }}
),

ranked as (
    select
        windowed.*,
        case
            when applicant_resident_id is not null and applicant_uscc is not null
                then case when applicant_type = '法人' then 'organisation' else 'person' end
            when applicant_resident_id is not null then 'person'
            when applicant_uscc is not null then 'organisation'
        end as applicant_kind,
        row_number() over (
            partition by application_id
            order by _loaded_at desc, _row_number desc
        ) as recency,
        channel_vocabulary.code as channel_code
    from windowed
    -- the service centre's channel names, mapped in the catalog (sources.yaml vocabularies)
    left join {{ source('reference', 'vocabularies') }} as channel_vocabulary
        on channel_vocabulary.feed_id = 'egov_applications'
        and channel_vocabulary.column_name = 'channel'
        and windowed.channel = channel_vocabulary.value
)

select
    cast(application_id as {{ dbt.type_string() }}) as application_id,
    cast(submitted_date as date) as submitted_date,
    submitted_at,
    cast(service_code as {{ dbt.type_string() }}) as service_code,
    cast(service_name as {{ dbt.type_string() }}) as service_name,
    cast(applicant_kind as {{ dbt.type_string() }}) as applicant_kind,
    cast(
        case
            when applicant_kind = 'person' then {{ pseudonym('applicant_resident_id') }}
            else applicant_uscc
        end as {{ dbt.type_string() }}
    ) as applicant_key,
    cast(channel as {{ dbt.type_string() }}) as channel,
    coalesce(channel_code = 'online', false) as is_online,
    cast(visits as integer) as visits,
    visits <= 1 as at_most_one_visit,  -- 最多跑一次; null when visits is unknown
    completed_at,
    coalesce(status = '已办结', false) as is_completed,
    coalesce(status = '已办结' and completed_at is null, false) as missing_completion,
    cross_region,  -- null when delivered neither Y nor N
    cast(district_code as {{ dbt.type_string() }}) as district_code,
    cast(status as {{ dbt.type_string() }}) as status
from ranked
where recency = 1
    and applicant_kind is not null
