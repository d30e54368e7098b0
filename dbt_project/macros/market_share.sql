{#- Join each row to the operator's market share in a district on a day: the int_spatial__market_share row
    whose validity [valid_from, valid_to) holds `day` (a month's share holds until the next delivered
    month). The one place of that lookup for the fusion models (OD and presence, per operator and fused);
    `kind` is 'left' where a missing share must keep the row, 'inner' where it drops it. The dbt test
    spatial_presence_district_totals_reconcile keeps its own copy on purpose: it recomputes independently. -#}
{% macro join_market_share(kind, district, operator, day) -%}
{{ kind }} join {{ ref('int_spatial__market_share') }} as share
    on {{ district }} = share.district_code
    and {{ operator }} = share.operator
    and {{ day }} >= share.valid_from
    and {{ day }} < share.valid_to
{%- endmacro %}
