-- Enterprises (法人) with a validated USCC as their key: the latest registry record of each.
with enterprises as (
    select * from {{ ref('int_identity__enterprises') }}
)

select
    cast(enterprise_key as {{ dbt.type_string() }}) as enterprise_key,
    cast(name as {{ dbt.type_string() }}) as name,
    -- 法定代表人 for display, surname only (张*): the registry's full name is restricted (catalog).
    cast({{ desensitise('legal_representative', 'person_name') }} as {{ dbt.type_string() }})
        as legal_representative,
    cast(entity_type as {{ dbt.type_string() }}) as entity_type,
    cast(district_code as {{ dbt.type_string() }}) as district_code,
    cast(industry_code as {{ dbt.type_string() }}) as industry_code,
    cast(status as {{ dbt.type_string() }}) as status,
    -- 存续 (also reported as 在业 / 开业 / 在营 / 存续(在营、开业、在册)) = operating
    coalesce(status like '存续%' or status in ('在业', '开业', '在营'), false) as is_active,
    cast(registered_capital_wan as double) as registered_capital_wan,
    cast(established_on as date) as established_on
from enterprises
