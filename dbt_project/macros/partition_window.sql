{#-
  Restrict an incremental model to the days of the Dagster run. Daily models are materialized
  incremental on their day column, so re-running a day replaces it: strategy delete+insert (unique_key =
  the day) on DuckDB, insert_overwrite of the day partitions (partition_by = the day, dynamic partition
  overwrite) on Spark.
    - vars min_date / max_date set (a partitioned run or backfill): exactly those days;
    - otherwise, on an incremental run: the last day already built and everything after it;
    - on a full refresh: everything.
-#}
{% macro partition_window(day_column) -%}
    {%- if is_incremental() -%}
        {%- if var('min_date', none) -%}
            and {{ day_column }} between cast('{{ var("min_date") }}' as date) and cast('{{ var("max_date") }}' as date)
        {%- else -%}
            and {{ day_column }} >= (select coalesce(max({{ day_column }}), cast('1900-01-01' as date)) from {{ this }})
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
