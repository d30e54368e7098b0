-- Every valid registered resident with the generalised attributes of dim_resident (sex, 5-year age band,
-- school stage, current hukou district), before dim_resident suppresses the records that would be
-- re-identifiable. Indicators count from here, so suppression never changes a registered population.
-- Ages come from the generalisation macros of macros/masking.sql, taken at int_people__as_of_date.
with residents as (
    select * from {{ ref('int_identity__residents') }}
),

as_of as (
    select as_of_date from {{ ref('int_people__as_of_date') }}
),

aged as (
    select
        residents.resident_key,
        residents.sex,
        residents.district_code,
        {{ desensitise('residents.birth_date', 'birth_date', as_of='as_of.as_of_date') }} as age_band,
        {{ desensitise('residents.birth_date', 'birth_date', method='age_years', as_of='as_of.as_of_date') }}
            as age
    from residents
    cross join as_of
)

select
    cast(resident_key as {{ dbt.type_string() }}) as resident_key,
    cast(sex as {{ dbt.type_string() }}) as sex,
    cast(age_band as {{ dbt.type_string() }}) as age_band,
    cast(
        case
            when age between 6 and 11 then 'primary'
            when age between 12 and 14 then 'junior'
        end as {{ dbt.type_string() }}
    ) as school_stage,
    cast(district_code as {{ dbt.type_string() }}) as district_code
from aged
