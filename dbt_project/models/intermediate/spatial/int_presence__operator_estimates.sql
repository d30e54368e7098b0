{{ daily_incremental_config('stat_date') }}
-- Per operator, grid cell and hour: the operator's subscribers present, from its own spatial units placed
-- on the grid (int_spatial__operator_units), with the operator's market share in the cell's district.
-- A daily table (the run's days replaced, like the fact), not a view: the fused fact and the test that
-- district totals reconcile both read it, and as a view each of them placed every presence row of the
-- run's days on the grid again (at a million residents, two thirds of the cost of each).
--   reported_count:   sum of the delivered counts (units with a number);
--   suppressed_units: units delivered as '<5' / masked; each counts var('suppressed_presence_value', 2)
--                     people, the midpoint of 0..4 (operators list every unit they expect people in, and
--                     a suppressed count may be a true 0);
--   subscribers:      reported_count + suppressed_units * that value.
-- A unit delivered twice for an hour counts once (its largest count). Rows without a unit on the grid,
-- an hour or a usable count are left out (counted in int_spatial__rejected_records).
with presence as (
    -- every presence feed of the catalog (var operator_feeds, macros/operator_feeds.sql)
    {{ union_operator_feeds('presence', 'operator, unit_id, stat_date, hour_start, user_count, is_suppressed') }}  -- noqa: LT05
),

unit_hours as (
    select
        operator,
        unit_id,
        stat_date,
        hour_start,
        max(user_count) as user_count,
        max(case when is_suppressed then 1 else 0 end) as any_suppressed
    from presence
    where stat_date is not null {{ partition_window('stat_date') }}
        and unit_id is not null
        and hour_start is not null
        and (user_count >= 0 or is_suppressed)
    group by operator, unit_id, stat_date, hour_start
),

placed as (
    select
        unit_hours.*,
        units.grid_id
    from unit_hours
    inner join {{ ref('int_spatial__operator_units') }} as units
        on unit_hours.operator = units.operator
        and unit_hours.unit_id = units.unit_id
    where units.grid_id is not null
),

per_grid as (
    select
        operator,
        grid_id,
        stat_date,
        hour_start,
        count(*) as units,
        coalesce(sum(user_count), 0) as reported_count,
        sum(case when user_count is null and any_suppressed = 1 then 1 else 0 end) as suppressed_units
    from placed
    group by operator, grid_id, stat_date, hour_start
)

select
    per_grid.operator,
    per_grid.grid_id,
    grid.district_code,
    per_grid.stat_date,
    per_grid.hour_start,
    per_grid.units,
    per_grid.reported_count,
    per_grid.suppressed_units,
    per_grid.reported_count
    + per_grid.suppressed_units * {{ var('suppressed_presence_value', 2) }} as subscribers,
    share.subscriber_share as market_share
from per_grid
inner join {{ ref('int_spatial__grid_cells') }} as grid on per_grid.grid_id = grid.grid_id
{{ join_market_share('left', 'grid.district_code', 'per_grid.operator', 'per_grid.stat_date') }}
