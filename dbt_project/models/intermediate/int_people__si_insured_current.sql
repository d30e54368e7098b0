-- Insurance enrolments as they stand now: the latest version of each insured_id (updated_at, then load
-- time), with the pseudonymous resident key (null when the delivered ID fails validation).
with insured as (
    select * from {{ ref('stg_si_insured') }}
    where insured_id is not null
),

ranked as (
    select
        insured.*,
        row_number() over (
            partition by insured_id
            order by updated_at desc nulls last, _loaded_at desc, _row_number desc
        ) as recency
    from insured
)

select
    insured_id,
    case when id_number is not null then {{ pseudonym('id_number') }} end as resident_key,
    id_number_problem,
    unit_id,
    insurance_type,
    status,
    start_month,
    monthly_base,
    updated_at,
    _source_file,
    _batch_id,
    _loaded_at
from ranked
where recency = 1
