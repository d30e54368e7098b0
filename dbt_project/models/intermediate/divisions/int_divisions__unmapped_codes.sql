-- Delivered records whose county-level division code maps to no current district of the city, per feed,
-- reason and delivered code. Nothing is guessed: these records keep district_code null in their models
-- (facilities and cells then take their grid cell's district, see int_spatial__rejected_records).
--   retired_code_without_successor - a code of the city retired by redistricting for which the record of
--                                    changes (catalog/division_changes.csv) establishes no successor;
--   not_a_division_of_the_city     - an unknown code, or a county outside the configured city.
{% set feeds = [
    ('household_registry', 'stg_household_registry'),
    ('legal_entities', 'stg_legal_entities'),
    ('si_unit', 'stg_si_unit'),
    ('egov_applications', 'stg_egov_applications'),
    ('hotline_tickets', 'stg_hotline_tickets'),
    ('medical_facilities', 'stg_medical_facilities'),
    ('schools', 'stg_schools'),
    ('operator_c_cells', 'stg_operator_c_cells'),
    ('operator_market_share', 'stg_operator_market_share'),
] %}
with delivered as (
    {% for feed, model in feeds %}
    select '{{ feed }}' as feed, district_code_delivered, district_code from {{ ref(model) }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

crosswalk as (
    select code, status, maps_to from {{ source('reference', 'division_crosswalk') }}
)

select
    cast(delivered.feed as {{ dbt.type_string() }}) as feed,
    cast(
        case
            when
                crosswalk.status = 'retired' and crosswalk.maps_to is null
                then 'retired_code_without_successor'
            else 'not_a_division_of_the_city'
        end as {{ dbt.type_string() }}
    ) as reason,
    cast(delivered.district_code_delivered as {{ dbt.type_string() }}) as district_code_delivered,
    cast(count(*) as bigint) as records
from delivered
left join crosswalk on delivered.district_code_delivered = crosswalk.code
where delivered.district_code_delivered is not null
    and delivered.district_code is null
group by 1, 2, 3
