-- Quality trend per provider department: the last 30 days of the daily scorecard ending at its latest
-- day, and the last 7 days against the 7 before them for a direction (rule in _quality.yml).
{%- set quarantine_tolerance = 0.005 %}  {#- change in quarantine rate that counts (0.5 percentage points) #}
{%- set pass_rate_tolerance = 0.02 %}    {#- change in expectation pass rate that counts (2 points) #}
{%- set late_share_tolerance = 0.1 %}    {#- change in the share of late days that counts #}
with daily as (
    select * from {{ ref('quality_scorecard_daily') }}
),

bounds as (
    select max(day) as window_end from daily
),

providers as (
    select
        provider_code,
        any_value(provider_name) as provider_name,
        any_value(provider_name_en) as provider_name_en
    from {{ source('reference', 'feeds') }}
    group by provider_code
),

windowed as (
    select
        daily.*,
        daily.day > bounds.window_end - 7 as in_last_7d,
        daily.day <= bounds.window_end - 7 and daily.day > bounds.window_end - 14 as in_prev_7d
    from daily
    cross join bounds
    where daily.day > bounds.window_end - 30
),

{%- set windows = {'30d': 'true', '7d': 'in_last_7d', 'prev_7d': 'in_prev_7d'} %}
{%- set measures = [
    'days_tracked', 'days_reported', 'deliveries', 'rows_received', 'rows_quarantined', 'expectations_evaluated',
    'expectations_passed', 'late_days', 'max_lateness_hours'] %}  {#- the columns of totals, per window #}

-- sqlfluff cannot indent the lines of a Jinja loop that follows a select target:
-- noqa: disable=LT02
totals as (
    select
        provider_code,
        {%- for suffix, condition in windows.items() %}
        count(*) filter (where {{ condition }}) as days_tracked_{{ suffix }},
        count(*) filter (where {{ condition }} and deliveries > 0) as days_reported_{{ suffix }},
        coalesce(sum(deliveries) filter (where {{ condition }}), 0) as deliveries_{{ suffix }},
        coalesce(sum(rows_received) filter (where {{ condition }}), 0) as rows_received_{{ suffix }},
        coalesce(sum(rows_quarantined) filter (where {{ condition }}), 0) as rows_quarantined_{{ suffix }},
        coalesce(sum(expectations_evaluated) filter (where {{ condition }}), 0)
            as expectations_evaluated_{{ suffix }},
        coalesce(sum(expectations_passed) filter (where {{ condition }}), 0)
            as expectations_passed_{{ suffix }},
        count(*) filter (where {{ condition }} and feeds_late > 0) as late_days_{{ suffix }},
        max(max_lateness_hours) filter (where {{ condition }}) as max_lateness_hours_{{ suffix }}
        {%- if not loop.last %},{% endif %}
        {%- endfor %}
    from windowed
    group by provider_code
),
-- noqa: enable=LT02

rates as (
    select
        providers.*,
        bounds.window_end,
        {%- for suffix in windows %}
        {%- for measure in measures %}
        totals.{{ measure }}_{{ suffix }},
        {%- endfor %}
        rows_quarantined_{{ suffix }} / nullif(rows_received_{{ suffix }}, 0) as quarantine_rate_{{ suffix }},
        expectations_passed_{{ suffix }} / nullif(expectations_evaluated_{{ suffix }}, 0)
            as expectation_pass_rate_{{ suffix }},
        late_days_{{ suffix }} / nullif(days_tracked_{{ suffix }}, 0) as late_share_{{ suffix }}
        {%- if not loop.last %},{% endif %}
        {%- endfor %}
    from providers
    cross join bounds
    left join totals using (provider_code)
    where bounds.window_end is not null
),

-- Each signal compares the last 7 days with the 7 before: +1 better, -1 worse, 0 within tolerance or
-- not measurable in one of the weeks.
signals as (
    select
        *,
        case
            when quarantine_rate_7d - quarantine_rate_prev_7d > {{ quarantine_tolerance }} then -1
            when quarantine_rate_prev_7d - quarantine_rate_7d > {{ quarantine_tolerance }} then 1
            else 0
        end as quarantine_signal,
        case
            when expectation_pass_rate_prev_7d - expectation_pass_rate_7d > {{ pass_rate_tolerance }} then -1
            when expectation_pass_rate_7d - expectation_pass_rate_prev_7d > {{ pass_rate_tolerance }} then 1
            else 0
        end as expectation_signal,
        case
            when late_share_7d - late_share_prev_7d > {{ late_share_tolerance }} then -1
            when late_share_prev_7d - late_share_7d > {{ late_share_tolerance }} then 1
            else 0
        end as lateness_signal
    from rates
)

select
    cast(provider_code as {{ dbt.type_string() }}) as provider_code,
    cast(provider_name as {{ dbt.type_string() }}) as provider_name,
    cast(provider_name_en as {{ dbt.type_string() }}) as provider_name_en,
    cast(window_end - 29 as date) as window_start,
    cast(window_end as date) as window_end,
    cast(coalesce(days_reported_30d, 0) as bigint) as days_reported,
    cast(coalesce(deliveries_30d, 0) as bigint) as deliveries_30d,
    cast(coalesce(rows_received_30d, 0) as bigint) as rows_received_30d,
    cast(coalesce(rows_quarantined_30d, 0) as bigint) as rows_quarantined_30d,
    cast(quarantine_rate_30d as double) as quarantine_rate_30d,
    cast(coalesce(expectations_evaluated_30d, 0) as bigint) as expectations_evaluated_30d,
    cast(coalesce(expectations_passed_30d, 0) as bigint) as expectations_passed_30d,
    cast(expectation_pass_rate_30d as double) as expectation_pass_rate_30d,
    cast(coalesce(late_days_30d, 0) as bigint) as late_days_30d,
    cast(max_lateness_hours_30d as double) as max_lateness_hours_30d,
    cast(coalesce(days_reported_7d, 0) as bigint) as days_reported_7d,
    cast(coalesce(rows_received_7d, 0) as bigint) as rows_received_7d,
    cast(quarantine_rate_7d as double) as quarantine_rate_7d,
    cast(expectation_pass_rate_7d as double) as expectation_pass_rate_7d,
    cast(coalesce(late_days_7d, 0) as bigint) as late_days_7d,
    cast(coalesce(days_reported_prev_7d, 0) as bigint) as days_reported_prev_7d,
    cast(coalesce(rows_received_prev_7d, 0) as bigint) as rows_received_prev_7d,
    cast(quarantine_rate_prev_7d as double) as quarantine_rate_prev_7d,
    cast(expectation_pass_rate_prev_7d as double) as expectation_pass_rate_prev_7d,
    cast(coalesce(late_days_prev_7d, 0) as bigint) as late_days_prev_7d,
    cast(
        case
            when coalesce(days_tracked_7d, 0) = 0 or coalesce(days_tracked_prev_7d, 0) = 0 then null
            when least(quarantine_signal, expectation_signal, lateness_signal) < 0 then 'worsening'
            when greatest(quarantine_signal, expectation_signal, lateness_signal) > 0 then 'improving'
            else 'stable'
        end as {{ dbt.type_string() }}
    ) as direction
from signals
