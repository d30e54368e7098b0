{#-
  Snapshots on Spark with plain Parquet tables (project override of dbt-spark's snapshot materialization,
  which needs Delta, Iceberg or Hudi for its MERGE; those jars are not available offline).

  The same staging rows as dbt's (snapshot_staging_table: inserts, updates and, with hard_deletes, deletes
  of the strategy) are applied by rebuilding the table instead of merging:
    1. `<snapshot>__dbt_new` (Parquet) = the current table with dbt_valid_to closed on the rows the staging
       rows update or delete (a row still current: dbt_valid_to null, or dbt_valid_to_current), plus the
       staging rows to insert whose dbt_scd_id is not in the table yet: what dbt's MERGE would leave;
    2. `insert overwrite` of the snapshot table from it (Spark cannot overwrite a table in a query that
       reads it, hence the intermediate table), then `__dbt_new` and the staging view are dropped.
  Differences from dbt's merge-based snapshot: every run rewrites the whole table (cost grows with the
  history, fine for registries of this size); the two statements are not one transaction (a failure
  between them leaves the previous table intact and `__dbt_new` behind, dropped by the next run); grants
  and docs are applied as by dbt-spark. The first run creates the table as dbt does (build_snapshot_table).
-#}
{% materialization snapshot, adapter='spark' %}
  {%- set target_table = model.get('alias', model.get('name')) -%}
  {%- set strategy_name = config.get('strategy') -%}
  {%- set grant_config = config.get('grants') -%}
  {%- set columns = config.get('snapshot_table_column_names') or get_snapshot_table_column_names() -%}

  {%- set target_relation_exists, target_relation = get_or_create_relation(
          database=none, schema=model.schema, identifier=target_table, type='table') -%}
  {%- if not target_relation.is_table -%}
    {% do exceptions.relation_wrong_type(target_relation, 'table') %}
  {%- endif -%}
  {% if not adapter.check_schema_exists(model.database, model.schema) %}
    {% do create_schema(model.schema) %}
  {% endif %}

  {{ run_hooks(pre_hooks, inside_transaction=False) }}
  {{ run_hooks(pre_hooks, inside_transaction=True) }}

  {%- set strategy_macro = strategy_dispatch(strategy_name) -%}
  {%- set strategy = strategy_macro(model, "snapshotted_data", "source_data", model['config'], target_relation_exists) -%}

  {% if not target_relation_exists %}
    {% call statement('main') %}
      {{ create_table_as(False, target_relation, build_snapshot_table(strategy, model['compiled_code'])) }}
    {% endcall %}
  {% else %}
    {{ adapter.valid_snapshot_target(target_relation, columns) }}
    {%- set staging_table = spark_build_snapshot_staging_table(strategy, sql, target_relation) -%}
    {%- set bookkeeping = ['dbt_change_type', 'dbt_unique_key'] -%}
    {%- set missing_columns = adapter.get_missing_columns(staging_table, target_relation)
                                | rejectattr('name', 'in', bookkeeping) | list -%}
    {% do create_columns(target_relation, missing_columns) %}

    {%- set target_columns = adapter.get_columns_in_relation(target_relation) -%}
    {%- set staging_names = adapter.get_columns_in_relation(staging_table) | map(attribute='name') | list -%}
    {%- set new_relation = target_relation.incorporate(path={'identifier': target_table ~ '__dbt_new'}) -%}
    {%- set valid_to = columns.dbt_valid_to -%}
    {%- set still_current -%}
      (dest.{{ valid_to }} is null
       {%- if config.get('dbt_valid_to_current') %} or dest.{{ valid_to }} = {{ config.get('dbt_valid_to_current') }}{% endif %})
    {%- endset -%}

    {%- set new_sql -%}
      with closed as (
          select {{ columns.dbt_scd_id }}, max({{ valid_to }}) as closed_at
          from {{ staging_table }}
          where dbt_change_type in ('update', 'delete')
          group by {{ columns.dbt_scd_id }}
      )
      select
          {%- for column in target_columns %}
          {% if column.name == valid_to -%}
          case when closed.closed_at is not null and {{ still_current }} then closed.closed_at else dest.{{ valid_to }} end
          {%- else -%}
          dest.{{ adapter.quote(column.name) }}
          {%- endif %} as {{ adapter.quote(column.name) }}{{ ',' if not loop.last }}
          {%- endfor %}
      from {{ target_relation }} as dest
      left join closed on dest.{{ columns.dbt_scd_id }} = closed.{{ columns.dbt_scd_id }}
      union all
      select
          {%- for column in target_columns %}
          {% if column.name in staging_names %}src.{{ adapter.quote(column.name) }}{% else %}cast(null as {{ column.data_type }}){% endif %} as {{ adapter.quote(column.name) }}{{ ',' if not loop.last }}
          {%- endfor %}
      from {{ staging_table }} as src
      left anti join {{ target_relation }} as dest on src.{{ columns.dbt_scd_id }} = dest.{{ columns.dbt_scd_id }}
      where src.dbt_change_type = 'insert'
    {%- endset %}

    {% do adapter.drop_relation(new_relation) %}
    {% call statement('build_new_snapshot') %}
      {{ create_table_as(False, new_relation, new_sql) }}
    {% endcall %}

    {% call statement('main') %}
      insert overwrite table {{ target_relation }}
      select
      {%- for column in target_columns %} {{ adapter.quote(column.name) }}{{ ',' if not loop.last }}{% endfor %}
      from {{ new_relation }}
    {% endcall %}
  {% endif %}

  {% set should_revoke = should_revoke(target_relation_exists, full_refresh_mode) %}
  {% do apply_grants(target_relation, grant_config, should_revoke) %}
  {% do persist_docs(target_relation, model) %}

  {{ run_hooks(post_hooks, inside_transaction=True) }}
  {{ adapter.commit() }}

  {% if staging_table is defined %}
    {% do adapter.drop_relation(new_relation) %}
    {% do post_snapshot(staging_table) %}
  {% endif %}

  {{ run_hooks(post_hooks, inside_transaction=False) }}

  {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}
