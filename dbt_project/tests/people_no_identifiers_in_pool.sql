{#-
  No resident ID or mobile number in any text column of the people pool tables: a value containing a
  *valid* 18-character resident ID (check digit and birth date verified, so USCCs and other codes do
  not count) or an 11-digit mainland mobile number fails. 64-hex pseudonyms are skipped. Both hold 11
  digits in a row: values shorter than that, or without such a run, are left at the scan (one cheap
  pattern per value, before the two extracting ones). The ID check (a Python function) runs only on the
  values the pattern found (CASE: DuckDB would otherwise call it on every row).
-#}
{#- Reported in Dagster as a check of the last people model built (it runs with the daily facts). -#}
{{ config(meta={'dagster': {'ref': {'name': 'fct_service_application'}}}) }}
{%- set pool_models = ['dim_resident', 'dim_enterprise', 'fct_insurance_enrolment', 'fct_hotline_ticket', 'fct_service_application'] -%}
{%- set relations = {} -%}
{%- for name in pool_models -%}{%- do relations.update({name: ref(name)}) -%}{%- endfor -%}
{%- set parts = [] -%}
{%- if execute -%}
    {%- for name in pool_models -%}
        {%- set day_column = daily_fact_day_column(relations[name]) -%}  {#- daily facts: the run's days #}
        {%- for column in adapter.get_columns_in_relation(relations[name]) if column.is_string() -%}
            {%- do parts.append(
                "select '" ~ name ~ "' as model, '" ~ column.name ~ "' as column_name, "
                ~ adapter.quote(column.name) ~ " as value from " ~ relations[name]
                ~ " where length(" ~ adapter.quote(column.name) ~ ") >= 11"
                ~ " and " ~ contains_match(adapter.quote(column.name), "'[0-9]{11}'")
                ~ (" and " ~ in_run_window(day_column) if day_column else "")
            ) -%}
        {%- endfor -%}
    {%- endfor -%}
{%- endif %}

with text_values as (
    {% if parts -%}
    {{ parts | join('\n    union all\n    ') }}
    {%- else -%}
    select cast(null as {{ dbt.type_string() }}) as model, cast(null as {{ dbt.type_string() }}) as column_name,
        cast(null as {{ dbt.type_string() }}) as value
    where 1 = 0
    {%- endif %}
),

candidates as (
    select
        model,
        column_name,
        value,
        regexp_extract(value, '(^|[^0-9A-Za-z])([0-9]{17}[0-9Xx])([^0-9A-Za-z]|$)', 2) as id_like,
        regexp_extract(value, '(^|[^0-9])(1[3-9][0-9]{9})([^0-9]|$)', 2) as phone_like
    from text_values
    where not (length(value) = 64 and lower(value) = value and regexp_extract(value, '^[0-9a-f]+$', 0) = value)
)

select model, column_name, value
from candidates
where (id_like <> '' and (case when id_like <> '' then {{ ric_problem('id_like') }} else 'none' end) is null)
    or phone_like <> ''
