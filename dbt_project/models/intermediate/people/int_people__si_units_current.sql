-- Social-insurance employers as they stand now: the latest version of each unit (updated_at, then load
-- time). uscc is null when the delivered code fails validation (uscc_problem says why).
with units as (
    select
        unit_id, uscc, uscc_problem, unit_name, district_code, district_code_delivered, status, updated_at,
        _source_file, _row_number, _batch_id, _loaded_at
    from {{ ref('stg_si_unit') }}
    where unit_id is not null
),

ranked as (
    select
        units.*,
        row_number() over (
            partition by unit_id
            order by updated_at desc nulls last, _loaded_at desc, _row_number desc
        ) as recency
    from units
)

select
    unit_id,
    uscc,
    uscc_problem,
    unit_name,
    district_code,
    district_code_delivered,
    status,
    updated_at,
    _source_file,
    _batch_id,
    _loaded_at
from ranked
where recency = 1
