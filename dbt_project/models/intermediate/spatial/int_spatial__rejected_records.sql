-- What the spatial and telecom models could not use as delivered, per feed and reason, with what was done:
--   excluded                 - left out of the pool;
--   kept_without_coordinates - in dim_facility, flagged outside_city, no lng/lat/grid (out of spatial
--                              indicators);
--   repaired                 - swapped lng/lat swapped back;
--   kept_flagged             - kept as delivered with a flag (enrolment over capacity);
--   district_from_grid       - delivered district code unknown; the grid cell's district is used.
-- Rows quarantined at ingestion are in raw.quarantine, not here.
{#- facilities and base-station cells: one CTE per feed; cells of every cell_sites feed of the catalog -#}
{%- set located_feeds = [('medical_facilities', 'facility_id'), ('schools', 'school_id')] -%}
{%- for entry in operator_feeds('cell_sites', required=false) -%}
{%- do located_feeds.append((entry.feed, 'cell_id')) -%}
{%- endfor %}
with
{%- for feed, key in located_feeds %}
feed_{{ feed }} as (
    select
        *,
        count(*) over (partition by {{ key }}) as key_rows,
        row_number() over (partition by {{ key }} order by _loaded_at desc, _row_number desc) as version
    from {{ ref('stg_' ~ feed) }}
),
{% endfor %}
facility_reasons as (
    {% for feed, key in located_feeds %}
    {% set rel = 'feed_' ~ feed %}
    select '{{ feed }}' as feed, 'missing_key' as reason, 'excluded' as handling
    from {{ rel }} where {{ key }} is null
    union all
    select '{{ feed }}' as feed, 'missing_coordinates' as reason, 'excluded' as handling
    from {{ rel }} where {{ key }} is not null and lng is null and not outside_city
    union all
    select '{{ feed }}' as feed, 'duplicate_key' as reason, 'excluded' as handling
    from {{ rel }} where {{ key }} is not null and version > 1
    union all
    select '{{ feed }}' as feed, 'outside_city' as reason, 'kept_without_coordinates' as handling
    from {{ rel }} where {{ key }} is not null and outside_city
    union all
    select '{{ feed }}' as feed, 'coords_swapped' as reason, 'repaired' as handling
    from {{ rel }} where {{ key }} is not null and coords_swapped
    union all
    select '{{ feed }}' as feed, 'unknown_district_code' as reason, 'district_from_grid' as handling
    from {{ rel }} where {{ key }} is not null and district_code is null
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
    union all
    select 'schools' as feed, 'enrolment_over_capacity' as reason, 'kept_flagged' as handling
    from feed_schools where school_id is not null and enrolment_over_capacity
),

presence as (
    -- every presence and OD feed of the catalog (var operator_feeds, macros/operator_feeds.sql)
    {%- set presence_columns = 'operator, unit_id, stat_date, hour_start, user_count, is_suppressed' %}
    {{ union_operator_feeds('presence', presence_columns, with_feed=true) }}
),

presence_checked as (
    select
        presence.feed,
        case
            when presence.unit_id is null then 'missing_unit'
            when presence.hour_start is null or presence.stat_date is null then 'invalid_hour'
            when not coalesce(presence.user_count >= 0 or presence.is_suppressed, false) then 'invalid_count'
            when units.unit_id is null then 'unknown_unit'
            when units.grid_id is null then units.problem
        end as reason
    from presence
    left join {{ ref('int_spatial__operator_units') }} as units
        on presence.operator = units.operator
        and presence.unit_id = units.unit_id
),

presence_duplicates as (
    select
        feed,
        count(*) - count(distinct unit_id || '|' || cast(hour_start as {{ dbt.type_string() }})) as records
    from presence
    where unit_id is not null and hour_start is not null
    group by feed
),

od as (
    {{ union_operator_feeds('od', with_feed=true) }}
),

od_checked as (
    select
        feed,
        case
            when stat_date is null then 'invalid_date'
            when
                origin_district_code is null or destination_district_code is null
                then 'unknown_district_code'
            when not coalesce(trips >= 0 or is_suppressed, false) then 'invalid_count'
        end as reason
    from od
),

share_checked as (
    select
        'operator_market_share' as feed,
        case
            when district_code is null then 'unknown_district_code'
            -- the operators declared in the catalog (sources.yaml operators)
            when operator is null
                or operator not in (select operator_code from {{ source('reference', 'operators') }})
                then 'unknown_operator'
            when not coalesce(subscriber_share > 0 and subscriber_share <= 1, false) then 'invalid_share'
            when share_month is null then 'invalid_month'
        end as reason
    from {{ ref('stg_operator_market_share') }}
),

counted as (
    select feed, reason, handling, count(*) as records from facility_reasons group by feed, reason, handling
    union all
    select feed, reason, 'excluded' as handling, count(*) as records
    from presence_checked where reason is not null group by feed, reason
    union all
    select feed, 'duplicate_key' as reason, 'excluded' as handling, records
    from presence_duplicates where records > 0
    union all
    select feed, reason, 'excluded' as handling, count(*) as records
    from od_checked where reason is not null group by feed, reason
    union all
    select feed, reason, 'excluded' as handling, count(*) as records
    from share_checked where reason is not null group by feed, reason
)

select
    cast(feed as {{ dbt.type_string() }}) as feed,
    cast(reason as {{ dbt.type_string() }}) as reason,
    cast(handling as {{ dbt.type_string() }}) as handling,
    cast(records as bigint) as records
from counted
