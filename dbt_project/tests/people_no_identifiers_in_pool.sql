{#-
  No resident ID or mobile number in any text column of the people pool tables: a value containing a
  *valid* 18-character resident ID (check digit and birth date verified, so USCCs and other codes do
  not count) or an 11-digit mainland mobile number fails. 64-hex pseudonyms are skipped.
  Cost at city scale (issue 20): the scan keeps only values that hold an ID-shaped or a mobile-shaped token
  (`token_pattern`, one pattern per value that extracts nothing), not every value with 11 digits in a row: insurance
  numbers, unit numbers and most USCCs of the enrolment table had all passed and then paid for the two
  extracting patterns (1M residents: 3.6M values against 0.3M). A value either extracting pattern finds
  matches `token_pattern`, so nothing that could fail is left out. The ID check (a Python function) runs
  once per distinct ID-shaped token: the enterprise keys repeat on every enrolment (312k tokens, 16k
  distinct, at 1M residents). DuckDB pushes the conditions of `candidates` and of the final select down into
  each column's scan, where it ran both extracting patterns and the pseudonym test (lower-casing every
  value) on every value of every column: the extracting patterns are therefore guarded by `token_pattern`
  (a value it does not match extracts nothing from either) and a pseudonym is one anchored pattern. At 1M
  residents the test took 2.8-3.0 s alone, 2.6-3.7 s in the night's daily step; guarded, 1.3-1.4 s alone and
  1.2-1.5 s in the night.
-#}
{#- Reported in Dagster as a check of the last people model built (it runs with the daily facts). -#}
{{ config(meta={'dagster': {'ref': {'name': 'fct_service_application'}}}) }}
{%- set pool_models = ['dim_resident', 'dim_enterprise', 'fct_insurance_enrolment', 'fct_hotline_ticket', 'fct_service_application'] -%}
{%- set id_pattern = '(^|[^0-9A-Za-z])([0-9]{17}[0-9Xx])([^0-9A-Za-z]|$)' -%}
{%- set mobile_pattern = '(^|[^0-9])(1[3-9][0-9]{9})([^0-9]|$)' -%}
{%- set token_pattern = "'" ~ id_pattern ~ '|' ~ mobile_pattern ~ "'" -%}
{%- set has_token = contains_match('value', token_pattern) -%}
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
                ~ " and " ~ contains_match(adapter.quote(column.name), token_pattern)
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
        case when {{ has_token }} then regexp_extract(value, '{{ id_pattern }}', 2) else '' end as id_like,
        case when {{ has_token }} then regexp_extract(value, '{{ mobile_pattern }}', 2) else '' end as phone_like
    from text_values
    where not (length(value) = 64 and {{ contains_match('value', "'^[0-9a-f]{64}$'") }})  -- a pseudonym
),

id_problems as (
    select id_like, {{ ric_problem('id_like') }} as problem
    from (select distinct id_like from candidates where id_like <> '') as ids
)

select c.model, c.column_name, c.value
from candidates as c
left join id_problems as i on c.id_like = i.id_like
where (c.id_like <> '' and i.problem is null) or c.phone_like <> ''
