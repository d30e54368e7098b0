{#-
  The operator feeds of the source catalog, so that no model names one operator's feed: the staging model of a
  feed takes its operator code from the catalog (operator_code), and the operator models union the staging
  models stg_<feed> of every declared feed of a kind (union_operator_feeds, operator_units). The list is the var
  operator_feeds (dbt_project.yml), the copy of catalog/sources.yaml `operator_feed` that dbt can read while it
  parses; the reference step checks that the two agree (citybrain/reference/operators.py).
    kind: presence | od | cell_sites.
-#}
{% macro operator_feeds(kind, required=true) %}
    {%- set entries = (var('operator_feeds', {}) or {}).get(kind) or [] -%}
    {%- if required and not entries -%}
        {{ exceptions.raise_compiler_error("var operator_feeds declares no " ~ kind ~ " feed; the operator models need one (catalog/sources.yaml operator_feed)") }}
    {%- endif -%}
    {{ return(entries) }}
{% endmacro %}

{#- The operator code the catalog gives `feed` (reference.feeds, written from sources.yaml by the reference step). -#}
{% macro operator_code(feed) -%}
    (select operator_code from {{ source('reference', 'feeds') }} where feed_id = '{{ feed }}')
{%- endmacro %}

{#- The union of the staging models of every declared feed of `kind`: `columns` of each, led by the feed id as
    column `feed` when with_feed. -#}
{% macro union_operator_feeds(kind, columns='*', with_feed=false) %}
    {%- for entry in operator_feeds(kind) %}
    select {% if with_feed %}'{{ entry.feed }}' as feed, {% endif %}{{ columns }} from {{ ref('stg_' ~ entry.feed) }}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
{% endmacro %}

{#-
  Every spatial unit of every presence feed placed on the pool grid, once per unit (not per hourly row), by the
  feed's declared unit:
    h3:          the delivered H3 index, kept when it is a valid cell of resolution var('grid_resolution') (its
                 centre maps back to itself); else problem invalid_h3_index / wrong_h3_resolution;
    gcj02_point: the unit's GCJ-02 position (staging columns center_lng_gcj02, center_lat_gcj02, e.g. the centre
                 of a grid square) converted to WGS-84, then its H3 cell; no position: invalid_grid_id;
    wgs84_point: the same with a WGS-84 position (center_lng, center_lat);
    cell_site:   the base-station cell's WGS-84 position in the feed's cell_sites feed (its latest version), then
                 its H3 cell; outside_city / missing_coordinates when it has none.
  Columns: operator, unit_id, lng, lat, grid_id, district_code (delivered with cells only), problem.
-#}
{% macro operator_units() %}
with
{%- for entry in operator_feeds('presence') %}
{%- set p = 'p' ~ loop.index %}
{%- set staging = ref('stg_' ~ entry.feed) %}
{%- if entry.unit == 'h3' %}
{{ p }}_centres as (
    select
        unit_id,
        {{ grid_cell_lng('unit_id') }} as lng,
        {{ grid_cell_lat('unit_id') }} as lat
    from (select distinct unit_id from {{ staging }} where unit_id is not null) as units
),

{{ p }}_placed as (
    select
        {{ operator_code(entry.feed) }} as operator,
        unit_id,
        lng,
        lat,
        case when lat is not null and {{ grid_cell('lat', 'lng') }} = unit_id then unit_id end as grid_id,
        cast(null as {{ dbt.type_string() }}) as district_code,
        case
            when lat is null then 'invalid_h3_index'
            when {{ grid_cell('lat', 'lng') }} <> unit_id then 'wrong_h3_resolution'
        end as problem
    from {{ p }}_centres
){% if not loop.last %},{% endif %}
{%- elif entry.unit in ('gcj02_point', 'wgs84_point') %}
{{ p }}_converted as (
    select
        unit_id,
        {%- if entry.unit == 'gcj02_point' %}
        {{ gcj02_to_wgs84_lng('center_lng_gcj02', 'center_lat_gcj02') }} as lng,
        {{ gcj02_to_wgs84_lat('center_lng_gcj02', 'center_lat_gcj02') }} as lat
    from (
        select distinct unit_id, center_lng_gcj02, center_lat_gcj02 from {{ staging }} where unit_id is not null
    ) as units
        {%- else %}
        center_lng as lng,
        center_lat as lat
    from (select distinct unit_id, center_lng, center_lat from {{ staging }} where unit_id is not null) as units
        {%- endif %}
),

{{ p }}_placed as (
    select
        {{ operator_code(entry.feed) }} as operator,
        unit_id,
        lng,
        lat,
        {{ grid_cell('lat', 'lng') }} as grid_id,
        cast(null as {{ dbt.type_string() }}) as district_code,
        case when lng is null then 'invalid_grid_id' end as problem
    from {{ p }}_converted
){% if not loop.last %},{% endif %}
{%- elif entry.unit == 'cell_site' %}
{{ p }}_cells as (
    select
        *,
        row_number() over (partition by cell_id order by _loaded_at desc, _row_number desc) as version
    from {{ ref('stg_' ~ entry.cell_sites) }}
    where cell_id is not null
),

{{ p }}_placed as (
    select
        {{ operator_code(entry.feed) }} as operator,
        cell_id as unit_id,
        lng,
        lat,
        grid_id,
        district_code,
        case
            when outside_city then 'outside_city'
            when grid_id is null then 'missing_coordinates'
        end as problem
    from {{ p }}_cells
    where version = 1
){% if not loop.last %},{% endif %}
{%- else %}
{{ exceptions.raise_compiler_error("operator feed " ~ entry.feed ~ ": unknown presence unit " ~ entry.unit) }}
{%- endif %}
{%- endfor %}

{% for entry in operator_feeds('presence') -%}
select * from p{{ loop.index }}_placed
{% if not loop.last %}union all
{% endif %}
{%- endfor %}
{% endmacro %}
