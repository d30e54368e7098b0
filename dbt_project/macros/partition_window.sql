{#-
  Restrict an incremental model to the days of the Dagster run. Daily models are materialized
  incremental on their day column, so re-running a day replaces it: strategy delete+insert (unique_key =
  the day) on DuckDB, insert_overwrite of the day partitions (partition_by = the day, dynamic partition
  overwrite) on Spark.
    - a run window set (see run_window): exactly those days;
    - otherwise, on an incremental run: the last day already built and everything after it;
    - on a full refresh: everything.
-#}
{% macro partition_window(day_column) -%}
    {%- if is_incremental() -%}
        {%- if citybrain.run_window() -%}
            and {{ citybrain.in_run_window(day_column) }}
        {%- else -%}
            and {{ day_column }} >= (select coalesce(max({{ day_column }}), cast('1900-01-01' as date)) from {{ this }})
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{#-
  The config of a daily model (the materialization described above), one home for the daily facts:
  incremental on `day_column`, replaced day by day (delete+insert on DuckDB, insert_overwrite of the day
  partitions on Spark), new columns appended, tagged 'daily' for the Dagster daily step.
-#}
{% macro daily_incremental_config(day_column) -%}
{{ config(
    materialized='incremental',
    incremental_strategy='insert_overwrite' if target.type == 'spark' else 'delete+insert',
    partition_by=[day_column] if target.type == 'spark' else none,
    unique_key=day_column,
    on_schema_change='append_new_columns',
    tags=['daily'],
) }}
{%- endmacro %}

{#-
  The run's days, inclusive, as (min_date, max_date) strings YYYY-MM-DD, or none.
    - vars min_date / max_date (dbt run by hand: `--vars '{min_date: ..., max_date: ...}'`);
    - else $CITYBRAIN_MIN_DATE / $CITYBRAIN_MAX_DATE, which the Dagster daily step sets. Read only when
      dbt executes, never while it parses: a value dbt sees while parsing is part of the parse state, so
      a new day every night (as with --vars) would throw away partial parsing and re-parse the whole
      project each night.
-#}
{% macro run_window() -%}
    {%- if var('min_date', none) -%}
        {{ return((var('min_date'), var('max_date') or var('min_date'))) }}
    {%- elif execute and env_var('CITYBRAIN_MIN_DATE', '') -%}
        {{ return((env_var('CITYBRAIN_MIN_DATE'), env_var('CITYBRAIN_MAX_DATE', '') or env_var('CITYBRAIN_MIN_DATE'))) }}
    {%- endif -%}
    {{ return(none) }}
{%- endmacro %}
