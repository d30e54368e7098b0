{{ daily_incremental_config('stat_date') }}
-- Daily trips between districts, open: the fused estimate of fct_od_daily_unsuppressed (docs/POOL_SPATIAL.md)
-- with small cells suppressed (docs/GOVERNANCE.md "Small-cell suppression"). A pair whose estimated or
-- observed trips are above 0 and below k (catalog/privacy.yaml) is hidden, and so are complements in both
-- margins of the day's OD matrix (trips out of an origin, trips into a destination): in each, the hidden
-- cells are none or at least two summing to at least k. Crossed margins can need several passes (rounds);
-- whatever is left is caught by the blocking check at publication. A pair hidden in an earlier build of the
-- same day stays hidden.
with fused as (
    select * from {{ ref('fct_od_daily_unsuppressed') }}
    where 1 = 1 {{ partition_window('stat_date') }}
),

cells as (
    select
        fused.*,
        {{ was_suppressed(
            'fused', 'est_trips_suppressed', ['origin_district_code', 'destination_district_code'], 'stat_date'
        ) }} as was_suppressed
    from fused
),

{{ complementary_suppression('cells', keys=['stat_date', 'origin_district_code', 'destination_district_code'],
                             value='est_trips',
                             groups=[['stat_date', 'origin_district_code'], ['stat_date', 'destination_district_code']],
                             also=['observed_trips'],
                             forced='was_suppressed', rounds=4) }}

select
    stat_date,
    origin_district_code,
    destination_district_code,
    cast(case when suppressed then null else est_trips end as double) as est_trips,
    cast(case when suppressed then null else observed_trips end as double) as observed_trips,
    share_covered,
    operators_reporting,
    suppressed_operators,
    suppressed as est_trips_suppressed
from protected
