{#-
  SCD2 history of the legal-entity registry by validated USCC: name, type, district, industry, status
  and capital as the registry said from dbt_valid_from to dbt_valid_to. The legal representative
  (restricted) is not kept. Entities missing from a later full snapshot get dbt_valid_to set.
-#}
{% snapshot snap_legal_entities %}
{{
    config(
        unique_key='enterprise_key',
        strategy='check',
        check_cols=['name', 'entity_type', 'district_code', 'industry_code', 'status', 'registered_capital_wan'],
        hard_deletes='invalidate',
    )
}}
select
    enterprise_key,
    name,
    entity_type,
    district_code,
    industry_code,
    status,
    registered_capital_wan,
    established_on
from {{ ref('int_identity__enterprises') }}
{% endsnapshot %}
