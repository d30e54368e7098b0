-- Registered residents (户籍人口) by pseudonymous key: sex, 5-year age band, school stage and current
-- hukou district. Never the raw ID, name, phone, address or birth date. Ages are taken at
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
        extract(year from as_of.as_of_date) - extract(year from residents.birth_date)
        - case
            when extract(month from as_of.as_of_date) < extract(month from residents.birth_date)
                or (
                    extract(month from as_of.as_of_date) = extract(month from residents.birth_date)
                    and extract(day from as_of.as_of_date) < extract(day from residents.birth_date)
                )
            then 1 else 0
        end as age
    from residents
    cross join as_of
),

banded as (
    select
        aged.*,
        cast(floor(age / 5) * 5 as integer) as band_start
    from aged
)

select
    cast(resident_key as {{ dbt.type_string() }}) as resident_key,
    cast(sex as {{ dbt.type_string() }}) as sex,
    cast(
        case
            when age is null or age < 0 then null
            when age >= 85 then '85+'
            else lpad(cast(band_start as {{ dbt.type_string() }}), 2, '0') || '-'
                || lpad(cast(band_start + 4 as {{ dbt.type_string() }}), 2, '0')
        end as {{ dbt.type_string() }}
    ) as age_band,
    cast(
        case
            when age between 6 and 11 then 'primary'
            when age between 12 and 14 then 'junior'
        end as {{ dbt.type_string() }}
    ) as school_stage,
    cast(district_code as {{ dbt.type_string() }}) as district_code,
    cast(registered_on as date) as registered_on
from banded
