{{ latest_version_config('insured_id', 'stg_si_insured') }}
-- Insurance enrolments as they stand now: the latest version of each insured_id (updated_at, then load
-- time), with the pseudonymous resident key (null when the delivered ID fails validation). The keyed hash
-- is computed once per distinct person rather than once per enrolment. Built incrementally on DuckDB
-- (macros/portable.sql): a night ranks again only the enrolments it delivered a version of.
with insured as (
    select
        insured_id, id_number, id_number_problem, unit_id, insurance_type, status, start_month, monthly_base,
        updated_at, _source_file, _row_number, _batch_id, _loaded_at
    from {{ ref('stg_si_insured') }}
    where insured_id is not null
    {{ only_changed_keys('insured_id', ref('stg_si_insured')) }}
),

ranked as (
    select
        insured.*,
        row_number() over (
            partition by insured_id
            order by updated_at desc nulls last, _loaded_at desc, _row_number desc
        ) as recency
    from insured
),

current_versions as (
    select * from ranked where recency = 1
),

people as (
    select id_number, {{ pseudonym('id_number') }} as resident_key
    from (select distinct id_number from current_versions where id_number is not null) as ids
)

select
    current_versions.insured_id,
    people.resident_key,
    current_versions.id_number_problem,
    current_versions.unit_id,
    current_versions.insurance_type,
    current_versions.status,
    current_versions.start_month,
    current_versions.monthly_base,
    current_versions.updated_at,
    current_versions._source_file,
    current_versions._batch_id,
    current_versions._loaded_at
from current_versions
left join people on current_versions.id_number = people.id_number
