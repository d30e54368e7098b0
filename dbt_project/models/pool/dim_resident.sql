-- Registered residents (户籍人口) by pseudonymous key: sex, 5-year age band, school stage and current
-- hukou district. Never the raw ID, name, phone, address or birth date: ages come from the
-- generalisation macros of macros/masking.sql. Ages are taken at
-- int_people__as_of_date (the last delivered day).
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
        residents.registered_on,
        {{ desensitise('residents.birth_date', 'birth_date', as_of='as_of.as_of_date') }} as age_band,
        {{ desensitise('residents.birth_date', 'birth_date', method='age_years', as_of='as_of.as_of_date') }} as age
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
    cast(district_code as {{ dbt.type_string() }}) as district_code,
    cast(registered_on as date) as registered_on
from aged
