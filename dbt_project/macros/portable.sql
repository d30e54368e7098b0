{#-
  The few SQL constructs DuckDB and Spark spell differently, one small dispatch macro each: `duckdb__` is the
  project's original SQL, `spark__` Spark 4 SQL. The Spark session's time zone is UTC
  (citybrain/scale/spark_session.py), so a Spark `timestamp` is an instant like DuckDB's timestamptz and a
  zone-less time read as UTC is the wall-clock time the spark__ macros convert. Everything else in the models
  is SQL both engines accept, or dbt's cross-database macros (dbt.type_string, dbt.date_trunc, dbt.datediff).
  The domain and masking functions dispatch in domain.sql and masking.sql.
-#}

{#- The type of an instant (DuckDB: timestamp with time zone; Spark: timestamp). -#}
{% macro type_timestamptz() %}{{ return(adapter.dispatch('type_timestamptz', 'citybrain')()) }}{% endmacro %}
{% macro duckdb__type_timestamptz() %}timestamp with time zone{% endmacro %}
{% macro spark__type_timestamptz() %}timestamp{% endmacro %}

{#- Seconds since 1970-01-01 00:00:00 UTC of an instant, as a double (fractions of a second kept). -#}
{% macro epoch_seconds(ts) %}{{ return(adapter.dispatch('epoch_seconds', 'citybrain')(ts)) }}{% endmacro %}
{% macro duckdb__epoch_seconds(ts) %}epoch({{ ts }}){% endmacro %}
{% macro spark__epoch_seconds(ts) %}(cast(unix_micros({{ ts }}) as double) / 1000000){% endmacro %}

{#- An instant plus a number of seconds (a double). -#}
{% macro add_seconds(ts, seconds) %}{{ return(adapter.dispatch('add_seconds', 'citybrain')(ts, seconds)) }}{% endmacro %}
{% macro duckdb__add_seconds(ts, seconds) %}{{ ts }} + to_seconds({{ seconds }}){% endmacro %}
{% macro spark__add_seconds(ts, seconds) %}timestamp_micros(unix_micros({{ ts }}) + cast(round(({{ seconds }}) * 1000000) as bigint)){% endmacro %}

{#- The wall-clock time (a timestamp without time zone) of an instant in time zone `tz`. -#}
{% macro local_time(ts, tz) %}{{ return(adapter.dispatch('local_time', 'citybrain')(ts, tz)) }}{% endmacro %}
{% macro duckdb__local_time(ts, tz) %}timezone('{{ tz }}', {{ ts }}){% endmacro %}
{% macro spark__local_time(ts, tz) %}from_utc_timestamp({{ ts }}, '{{ tz }}'){% endmacro %}

{#- The instant of a wall-clock time (a timestamp without time zone) in time zone `tz`. -#}
{% macro instant_at(local_ts, tz) %}{{ return(adapter.dispatch('instant_at', 'citybrain')(local_ts, tz)) }}{% endmacro %}
{% macro duckdb__instant_at(local_ts, tz) %}timezone('{{ tz }}', {{ local_ts }}){% endmacro %}
{% macro spark__instant_at(local_ts, tz) %}to_utc_timestamp({{ local_ts }}, '{{ tz }}'){% endmacro %}

{#- One row per day from `first_day` to `last_day` (dates, inclusive), as a select-list expression of a
    query with one row of bounds; no row when a bound is null. -#}
{% macro day_series(first_day, last_day) %}{{ return(adapter.dispatch('day_series', 'citybrain')(first_day, last_day)) }}{% endmacro %}
{% macro duckdb__day_series(first_day, last_day) %}cast(unnest(generate_series({{ first_day }}, {{ last_day }}, interval 1 day)) as date){% endmacro %}
{% macro spark__day_series(first_day, last_day) %}explode(sequence({{ first_day }}, {{ last_day }}, interval 1 day)){% endmacro %}

{#- A JSON object of `value_type` values (text) as one row per key: the select-list expression giving the
    columns `key_name` and `value_name`. -#}
{% macro json_object_entries(json_text, value_type, key_name, value_name) %}{{ return(adapter.dispatch('json_object_entries', 'citybrain')(json_text, value_type, key_name, value_name)) }}{% endmacro %}
{% macro duckdb__json_object_entries(json_text, value_type, key_name, value_name) -%}
    unnest(map_keys(json_transform({{ json_text }}, '"MAP(VARCHAR, {{ value_type | upper }})"'))) as {{ key_name }},
    unnest(map_values(json_transform({{ json_text }}, '"MAP(VARCHAR, {{ value_type | upper }})"'))) as {{ value_name }}
{%- endmacro %}
{% macro spark__json_object_entries(json_text, value_type, key_name, value_name) -%}
    explode(from_json({{ json_text }}, 'map<string, {{ value_type }}>')) as ({{ key_name }}, {{ value_name }})
{%- endmacro %}

{#- The materialization of a staging model that calls the domain functions implemented in Python (cb_halfwidth,
    cb_ric_*, cb_uscc_*, coordinates, H3): a view on DuckDB, a table on Spark, where those functions are the
    session's temporary functions and a (persistent) view may not reference them. For daily feeds, whose
    consumers read one partition through the view. -#}
{% macro udf_view_materialization() %}{{ return(adapter.dispatch('udf_view_materialization', 'citybrain')()) }}{% endmacro %}
{% macro duckdb__udf_view_materialization() %}{{ return('view') }}{% endmacro %}
{% macro spark__udf_view_materialization() %}{{ return('table') }}{% endmacro %}

{#- The same for an unpartitioned feed (full snapshots: registry, entities, facilities; the insurance tables,
    read whole): a table on both engines. Its consumers read all of it, so as a view every consumer and
    every dbt test would call the Python functions on every row again (each registry ID was validated five
    times a night: two models, three tests); as a table they run once per night. -#}
{% macro udf_unpartitioned_materialization() %}{{ return('table') }}{% endmacro %}

{#- The config of a staging model over a feed whose raw table grows by loads and keeps them (a database feed
    read by cursor: each night appends the versions changed since, earlier versions stay): on DuckDB
    incremental, each build normalising only the loads it has not seen (`unseen_loads`) and first forgetting
    the rows of loads no longer in the raw table (superseded, `forget_removed_loads`), so a night costs the
    night's new versions, not all of history again. A change of the model's columns stops the build
    (on_schema_change='fail'): its earlier rows would otherwise keep the old columns' values; rebuild it
    with `--full-refresh`. On Spark a table, rebuilt whole (`udf_unpartitioned_materialization`). -#}
{% macro load_incremental_config(feed) -%}
{%- if target.type == 'spark' -%}
{{ config(materialized=citybrain.udf_unpartitioned_materialization()) }}
{%- else -%}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    tags=['load_incremental'],
    pre_hook="{{ citybrain.forget_removed_loads('" ~ feed ~ "') }}",
) }}
{%- endif -%}
{%- endmacro %}

{#- A load: the rows one ingestion run loaded from one delivered file (or database read). -#}
{% macro load_key_columns() %}{{ return(['_batch_id', '_source_file', '_file_sha256']) }}{% endmacro %}

{#- Rows `left` and `right` come from the same load: equal (nulls included) on the lineage `columns`. -#}
{% macro same_load(left, right, columns) -%}
{%- for column in columns -%}
{{ left }}.{{ column }} is not distinct from {{ right }}.{{ column }}{{ ' and ' if not loop.last }}
{%- endfor -%}
{%- endmacro %}

{#- The loads of `relation` that `other` lacks (lineage `columns`, nulls equal): a handful of rows, computed
    apart so the deletes and filters below join the big tables with it, never with each other (a NOT EXISTS
    between the built table and the raw table ran out of memory at 10M rows under a 2 GB limit). -#}
{% macro loads_missing_from(relation, other, columns) -%}
(
    select distinct {{ columns | join(', ') }} from {{ relation }}
    except
    select distinct {{ columns | join(', ') }} from {{ other }}
)
{%- endmacro %}

{#- The pre-hook of `load_incremental_config`: delete the built rows of loads that left the raw table. -#}
{% macro forget_removed_loads(feed) -%}
{%- if is_incremental() -%}
delete from {{ this }} as built
where exists (
    select 1
    from {{ citybrain.loads_missing_from(this, source('raw', feed), load_key_columns()) }} as removed
    where {{ citybrain.same_load('removed', 'built', load_key_columns()) }}
)
{%- else -%}
select 1
{%- endif -%}
{%- endmacro %}

{#- The config of a model keeping the latest version per `key` of a model built load by load (above): on
    DuckDB incremental, a build recomputing only the keys with a version loaded since the last build or whose
    kept version left with its load (`only_changed_keys`; delete+insert on `key`), after forgetting the kept
    versions whose load left `versions_model` (`forget_vanished_versions`). On Spark a table, rebuilt whole. -#}
{% macro latest_version_config(key, versions_model) -%}
{%- if target.type == 'spark' -%}
{{ config(materialized='table') }}
{%- else -%}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=key,
    on_schema_change='fail',
    tags=['load_incremental'],
    pre_hook="{{ citybrain.forget_vanished_versions('" ~ versions_model ~ "') }}",
) }}
{%- endif -%}
{%- endmacro %}

{#- The pre-hook of `latest_version_config`: delete the kept versions whose load is no longer in `versions_model`. -#}
{% macro forget_vanished_versions(versions_model) -%}
{%- if is_incremental() -%}
delete from {{ this }} as kept
where exists (
    select 1
    from {{ citybrain.loads_missing_from(this, ref(versions_model), ['_batch_id', '_source_file']) }} as vanished
    where {{ citybrain.same_load('vanished', 'kept', ['_batch_id', '_source_file']) }}
)
{%- else -%}
select 1
{%- endif -%}
{%- endmacro %}

{#- The filter of `latest_version_config`'s versions (after a `where`): on an incremental build, the keys with a
    version loaded after the newest one kept, and the keys with versions but none kept (their kept version
    left with its load). Their versions are ranked again, all of them, so a late or older version is judged
    against the others as on a full build. -#}
{% macro only_changed_keys(key, versions) -%}
{%- if is_incremental() -%}
and {{ key }} in (
    select {{ key }} from {{ versions }}
    where _loaded_at > (select max(_loaded_at) from {{ this }})
    union
    select {{ key }} from {{ versions }} as versions
    where not exists (select 1 from {{ this }} as kept where kept.{{ key }} = versions.{{ key }})
)
{%- endif -%}
{%- endmacro %}

{#- The filter of `load_incremental_config`'s source (`source_alias`, the raw table of `feed`): on an incremental
    build, the rows of loads not built yet. -#}
{% macro unseen_loads(feed, source_alias) -%}
{%- if is_incremental() -%}
where exists (
    select 1
    from {{ citybrain.loads_missing_from(source('raw', feed), this, load_key_columns()) }} as unseen
    where {{ citybrain.same_load('unseen', source_alias, load_key_columns()) }}
)
{%- endif -%}
{%- endmacro %}

{#-
  Model contracts on Spark. The YAML declares column types in DuckDB's words (varchar, timestamp with time
  zone, ...: also what the resource catalog publishes); dbt checks a contract by running
  `select cast(null as <declared type>) ...`, which Spark rejects for those two. This override of dbt's
  macro (for the spark adapter only) casts to Spark's name of the same type; the check is otherwise dbt's.
-#}
{% macro spark__get_empty_schema_sql(columns) %}
    {%- set spark_names = {'varchar': 'string', 'text': 'string', 'timestamp with time zone': 'timestamp', 'timestamptz': 'timestamp'} -%}
    {%- set translated = {} -%}
    {%- for name, column in columns.items() -%}
        {%- set declared = (column.get('data_type') or '') | trim | lower -%}
        {%- do translated.update({name: dict(column, data_type=spark_names.get(declared, column.get('data_type')))}) -%}
    {%- endfor -%}
    {{ return(default__get_empty_schema_sql(translated)) }}
{% endmacro %}

{#- Whether the text `expr` contains a match of the regular expression `pattern` (a quoted literal) anywhere. -#}
{% macro contains_match(expr, pattern) %}{{ return(adapter.dispatch('contains_match', 'citybrain')(expr, pattern)) }}{% endmacro %}
{% macro duckdb__contains_match(expr, pattern) %}regexp_matches({{ expr }}, {{ pattern }}){% endmacro %}
{% macro spark__contains_match(expr, pattern) %}({{ expr }} rlike {{ pattern }}){% endmacro %}
