{#- The delivery and check counters both quality scorecards publish (quality_scorecard_daily per provider,
    quality_scorecard_feed_daily per feed), typed as their contracts say, with the quarantine rate: one
    definition, so a provider's day and its feeds' days count and rate the same way. No trailing comma. -#}
{% macro scorecard_counters() -%}
cast(deliveries as bigint) as deliveries,
cast(failed_deliveries as bigint) as failed_deliveries,
cast(rows_received as bigint) as rows_received,
cast(rows_loaded as bigint) as rows_loaded,
cast(rows_quarantined as bigint) as rows_quarantined,
cast(rows_quarantined / nullif(rows_received, 0) as double) as quarantine_rate,
cast(expectations_evaluated as bigint) as expectations_evaluated,
cast(expectations_passed as bigint) as expectations_passed
{%- endmacro %}
