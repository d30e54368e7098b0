{{ daily_incremental_config('stat_date') }}
-- Hourly population per grid cell, open: the fused estimate of fct_presence_hourly_unsuppressed
-- (docs/POOL_SPATIAL.md) with small cells suppressed (docs/GOVERNANCE.md "Small-cell suppression"). A cell
-- whose estimate or observed subscribers are above 0 and below k (catalog/privacy.yaml) is hidden, and so
-- are complements: within each district and hour, whose total the district indicators publish (summed over
-- hours and days), the hidden cells are none or at least two summing to at least k. A cell hidden in an
-- earlier build of the same day stays hidden.
-- Hidden: est_population and observed_subscribers (null; est_population_suppressed true). The other
-- columns (operator shares and counts of operators) say nothing about how many people are there.
with fused as (
    select * from {{ ref('fct_presence_hourly_unsuppressed') }}
    where 1 = 1 {{ partition_window('stat_date') }}
),

cells as (
    select
        fused.*,
        {{ was_suppressed('fused', 'est_population_suppressed', ['grid_id', 'hour_start'], 'stat_date') }}
            as was_suppressed
    from fused
),

{{ complementary_suppression('cells', keys=['grid_id', 'hour_start'], value='est_population',
                             groups=[['district_code', 'hour_start']], also=['observed_subscribers'], forced='was_suppressed') }}

select
    grid_id,
    district_code,
    stat_date,
    hour_start,
    cast(case when suppressed then null else est_population end as double) as est_population,
    cast(case when suppressed then null else observed_subscribers end as double) as observed_subscribers,
    share_covered,
    operators_reporting,
    operators_listing,
    suppressed_operators,
    suppressed as est_population_suppressed
from protected
