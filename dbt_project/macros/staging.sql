{#-
  The pieces every staging model of a raw feed shares, one home each (issue 19): the lineage columns that
  every raw row carries through staging (README "Where things land": which file, which row, which batch,
  when), and the division crosswalk that maps delivered district codes to current ones (retired codes to
  their successor; codes of no division of the city stay null).
-#}

{#- The five lineage columns of a raw row, in their published order; `relation` qualifies them (e.g.
    'located') where the select joins several relations. No trailing comma: write it after the call when
    more columns follow. -#}
{% macro lineage_columns(relation=none) -%}
{%- set prefix = relation ~ '.' if relation else '' -%}
{%- for column in ['_source_file', '_file_sha256', '_row_number', '_batch_id', '_loaded_at'] -%}
{{ prefix }}{{ column }}{{ ',' if not loop.last }}
{% endfor -%}
{%- endmacro %}

{#- The head of a staging model: the raw feed as `source` and the division crosswalk as `crosswalk`, both
    CTEs (no trailing comma). -#}
{% macro staging_source(feed) -%}
source as (
    select * from {{ source('raw', feed) }}
),

crosswalk as (
    select code, maps_to from {{ source('reference', 'division_crosswalk') }}
)
{%- endmacro %}

{#- The closing select of a staging model whose rows carry one delivered district code: every column of
    `relation` plus district_code, the delivered code mapped through the crosswalk. -#}
{% macro select_with_district_code(relation='renamed') -%}
select
    {{ relation }}.*,
    crosswalk.maps_to as district_code
from {{ relation }}
left join crosswalk on {{ relation }}.district_code_delivered = crosswalk.code
{%- endmacro %}
