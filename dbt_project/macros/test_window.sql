{#-
  dbt tests of a daily fact check the days the run built, not the whole history.

  A daily fact (tag `daily`, incremental on its day column = `unique_key`) only changes in the run's window
  (run_window in partition_window.sql); the days before were tested on the night they
  were built. Testing the whole table every night would make each night's tests grow with the history
  (a year of hourly presence re-scanned 365 times a year). This override of dbt's `get_where_subquery`
  (the hook dbt documents for templating a test's `where`) adds the window to every generic test on such a
  model, next to any `where` the test sets itself. Runs without a window (full refresh, `dbt build` by
  hand) test everything, as before. Singular tests use `in_run_window` directly.
-#}
{% macro default__get_where_subquery(relation) -%}
    {%- set conditions = [] -%}
    {%- set where = config.get('where', '') -%}
    {%- if where -%}{%- do conditions.append('(' ~ where ~ ')') -%}{%- endif -%}
    {%- if execute and citybrain.run_window() -%}  {#- at parse time dbt only records the test's refs #}
        {%- set day_column = citybrain.daily_fact_day_column(relation) -%}
        {%- if day_column -%}{%- do conditions.append(citybrain.in_run_window(day_column)) -%}{%- endif -%}
    {%- endif -%}
    {%- if conditions -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ conditions | join(' and ') }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}

{#- The day column of a daily fact (its unique_key), or none when `relation` is not one. -#}
{% macro daily_fact_day_column(relation) -%}
    {%- if execute -%}
        {%- for node in graph.nodes.values() -%}
            {%- if node.resource_type == 'model' and 'daily' in node.tags
                  and node.config.materialized == 'incremental'
                  and (node.alias or node.name) | lower == relation.identifier | lower
                  and node.schema | lower == relation.schema | lower -%}
                {%- do return(node.config.unique_key) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {%- do return(none) -%}
{%- endmacro %}

{#- `day_column` within the run's days (run_window); `true` when the run has no window. -#}
{% macro in_run_window(day_column) -%}
    {%- set window = citybrain.run_window() -%}
    {%- if window -%}
        {{ day_column }} between cast('{{ window[0] }}' as date) and cast('{{ window[1] }}' as date)
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}
