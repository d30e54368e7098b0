{#-
  SCD2 history of the household registry, pseudonymous: which hukou district a resident was registered
  in, as the registry said from dbt_valid_from to dbt_valid_to. Only the resident key, sex, district and
  registration date are kept: never the raw ID, name, address, phone or birth date. A resident missing
  from a later full snapshot (moved out, deceased) gets dbt_valid_to set (hard_deletes = invalidate).
-#}
{% snapshot snap_household_registry %}
{{
    config(
        unique_key='resident_key',
        strategy='check',
        check_cols=['sex', 'district_code', 'registered_on'],
        hard_deletes='invalidate',
    )
}}
select
    resident_key,
    sex,
    district_code,
    registered_on
from {{ ref('int_identity__residents') }}
{% endsnapshot %}
