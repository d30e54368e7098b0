-- Social-insurance enrolments (社保参保) as they stand now, one row per insured_id (person x employer x
-- insurance type), keyed to residents by pseudonym and to enterprises by USCC. Enrolments whose resident
-- ID fails validation are excluded (counted in int_identity__rejected_identifiers). An employer whose USCC
-- is invalid or missing from the entity registry keeps its rows, with enterprise_key null.
with insured as (
    select * from {{ ref('int_people__si_insured_current') }}
    where resident_key is not null
),

units as (
    select * from {{ ref('int_people__si_units_current') }}
),

enterprises as (
    select enterprise_key from {{ ref('int_identity__enterprises') }}
),

residents as (
    select resident_key from {{ ref('int_identity__residents') }}
)

select
    cast(insured.insured_id as {{ dbt.type_string() }}) as insured_id,
    cast(insured.resident_key as {{ dbt.type_string() }}) as resident_key,
    residents.resident_key is not null as resident_in_registry,
    cast(insured.unit_id as {{ dbt.type_string() }}) as unit_id,
    cast(enterprises.enterprise_key as {{ dbt.type_string() }}) as enterprise_key,
    enterprises.enterprise_key is not null as employer_in_registry,
    cast(insured.insurance_type as {{ dbt.type_string() }}) as insurance_type,
    cast(insured.status as {{ dbt.type_string() }}) as status,
    coalesce(insured.status = '1', false) as is_active,
    cast(insured.start_month as date) as start_month,
    cast(insured.monthly_base as decimal(12, 2)) as monthly_base,
    cast(units.district_code as {{ dbt.type_string() }}) as district_code
from insured
left join units on insured.unit_id = units.unit_id
left join enterprises on units.uscc = enterprises.enterprise_key
left join residents on insured.resident_key = residents.resident_key
