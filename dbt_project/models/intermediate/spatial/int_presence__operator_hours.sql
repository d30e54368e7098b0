{{ config(materialized='view', tags=['daily']) }}
-- The hours each operator delivered (at least one usable presence row anywhere in the city). An operator
-- missing an hour contributes nothing to that hour's fusion; within a delivered hour, a grid cell the
-- operator does not list has none of its subscribers (operators list every unit they see people in).
select
    operator,
    stat_date,
    hour_start,
    count(*) as grid_cells,
    sum(reported_count) as reported_count,
    sum(suppressed_units) as suppressed_units
from {{ ref('int_presence__operator_estimates') }}
group by operator, stat_date, hour_start
