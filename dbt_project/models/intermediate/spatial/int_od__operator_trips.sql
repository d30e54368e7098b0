{{ config(materialized='view') }}
-- Per operator, day and (current) origin / destination district: the operator's trips, with its market
-- share in the origin district. Retired codes mapped to the same current district are summed; pairs with a
-- code of no division of the city are left out (counted in int_spatial__rejected_records).
--   reported_trips:   sum of delivered counts;
--   suppressed_pairs: delivered '<5' rows, each counted as var('suppressed_od_value', 2), the midpoint of
--                     0..4 (operators deliver every district pair, zeros included);
--   trips:            reported_trips + suppressed_pairs * that value.
with od as (
    -- every OD feed of the catalog (var operator_feeds, macros/operator_feeds.sql)
    {{ union_operator_feeds('od') }}
),

pairs as (
    select
        operator,
        stat_date,
        origin_district_code,
        destination_district_code,
        count(*) as delivered_rows,
        coalesce(sum(trips), 0) as reported_trips,
        sum(case when trips is null and is_suppressed then 1 else 0 end) as suppressed_pairs
    from od
    where stat_date is not null
        and origin_district_code is not null
        and destination_district_code is not null
        and (trips >= 0 or is_suppressed)
    group by operator, stat_date, origin_district_code, destination_district_code
)

select
    pairs.operator,
    pairs.stat_date,
    pairs.origin_district_code,
    pairs.destination_district_code,
    pairs.delivered_rows,
    pairs.reported_trips,
    pairs.suppressed_pairs,
    pairs.reported_trips + pairs.suppressed_pairs * {{ var('suppressed_od_value', 2) }} as trips,
    share.subscriber_share as market_share
from pairs
{{ join_market_share('left', 'pairs.origin_district_code', 'pairs.operator', 'pairs.stat_date') }}
