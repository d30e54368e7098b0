{#-
  The columns of a model that hold nulls, one row each with how many rows: `columns` must never be null.

  One test per model for all its non-null columns, not dbt's `not_null` once per column: each dbt test is a
  node with its own query, its own round of dbt's per-node work and a Dagster check of its own (about 0.1 s
  of a night each, and there were 143). One scan counts the nulls of every column; a failure says which
  columns and how many rows (dbt's "failures" is the number of columns that hold nulls).
  Plain SQL that dbt-duckdb and dbt-spark both run; `get_where_subquery` (test_window.sql) limits a daily
  fact to the run's days as for any generic test.
-#}
{% test citybrain_not_null(model, columns) %}
with nulls as (
    select
    {%- for column in columns %}
        sum(case when {{ column }} is null then 1 else 0 end) as null_rows_{{ loop.index }}{{ "," if not loop.last }}
    {%- endfor %}
    from {{ model }}
)
{% for column in columns -%}
select '{{ column }}' as column_name, null_rows_{{ loop.index }} as null_rows from nulls where null_rows_{{ loop.index }} > 0
{% if not loop.last %}union all
{% endif -%}
{% endfor %}
{% endtest %}
