-- Quality scorecard per provider department and day: the feeds' scorecard summed over the provider's
-- feeds (rules in _quality.yml).
with feed_days as (
    select * from {{ ref('quality_scorecard_feed_daily') }}
),

provider_days as (
    select
        day,
        provider_code,
        any_value(provider_name) as provider_name,
        any_value(provider_name_en) as provider_name_en,
        sum(deliveries) as deliveries,
        sum(failed_deliveries) as failed_deliveries,
        sum(rows_received) as rows_received,
        sum(rows_loaded) as rows_loaded,
        sum(rows_quarantined) as rows_quarantined,
        sum(expectations_evaluated) as expectations_evaluated,
        sum(expectations_passed) as expectations_passed,
        sum(blocking_failed) as blocking_failed,
        sum(warnings_failed) as warnings_failed,
        count(*) filter (where expected) as feeds_expected,
        count(*) filter (where delivered) as feeds_delivered,
        count(*) filter (where late) as feeds_late,
        max(lateness_hours) as max_lateness_hours
    from feed_days
    group by day, provider_code
)

select
    cast(day as date) as day,
    cast(provider_code as {{ dbt.type_string() }}) as provider_code,
    cast(provider_name as {{ dbt.type_string() }}) as provider_name,
    cast(provider_name_en as {{ dbt.type_string() }}) as provider_name_en,
    {{ scorecard_counters() }},
    cast(expectations_passed / nullif(expectations_evaluated, 0) as double) as expectation_pass_rate,
    cast(blocking_failed as bigint) as blocking_failed,
    cast(warnings_failed as bigint) as warnings_failed,
    cast(feeds_expected as bigint) as feeds_expected,
    cast(feeds_delivered as bigint) as feeds_delivered,
    cast(feeds_late as bigint) as feeds_late,
    cast(max_lateness_hours as double) as max_lateness_hours
from provider_days
