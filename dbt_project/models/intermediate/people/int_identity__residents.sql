-- One row per valid normalised resident ID in the household registry: the identity every department's
-- records join to through the keyed-hash pseudonym. Invalid IDs are left out (counted in
-- int_identity__rejected_identifiers). Duplicates of an ID (exact copies, or one person delivered once as a
-- 15-digit and once as an 18-digit number) collapse to one row: the latest load, then the latest
-- registration date, then the last row of the file wins. Sex and birth date come from the validated ID
-- (the delivered columns are the fallback). The raw ID itself is not kept.
with registry as (
    -- only the columns needed: the view's normalising functions run per column read
    select
        id_number, sex, birth_date, district_code, district_code_delivered, registered_on,
        _source_file, _row_number, _batch_id, _loaded_at
    from {{ ref('stg_household_registry') }}
    where id_number is not null
),

ranked as (
    select
        registry.*,
        count(*) over (partition by id_number) as delivered_rows,
        row_number() over (
            partition by id_number
            order by _loaded_at desc, registered_on desc nulls last, _row_number desc
        ) as recency
    from registry
)

select
    {{ pseudonym('id_number') }} as resident_key,
    coalesce({{ ric_sex('id_number') }}, sex) as sex,
    coalesce({{ ric_birth_date('id_number') }}, birth_date) as birth_date,
    district_code,
    district_code_delivered,
    registered_on,
    delivered_rows,
    _source_file,
    _row_number,
    _batch_id,
    _loaded_at
from ranked
where recency = 1
