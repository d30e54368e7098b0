-- The operators' subscriber shares of a district and month add up to 1 (within 0.01), and every operator with a
-- presence or OD feed in the catalog (reference.feeds operator_code) has one: the fusion divides by their sum, so
-- a share delivered as a percentage or a missing operator shows up here.
-- Reported in Dagster as a check of int_spatial__market_share (it also reads reference.feeds).
{{ config(meta={'dagster': {'ref': {'name': 'int_spatial__market_share'}}}) }}
with shares as (
    select district_code, share_month, operator, subscriber_share from {{ ref('int_spatial__market_share') }}
),

feed_operators as (
    select distinct operator_code from {{ source('reference', 'feeds') }}
    where operator_feed_kind in ('presence', 'od') and operator_code is not null
),

totals as (
    select district_code, share_month, sum(subscriber_share) as total_share, count(*) as operators
    from shares
    group by district_code, share_month
),

missing as (
    select totals.district_code, totals.share_month, count(*) as operators_missing
    from totals
    cross join feed_operators
    left join shares
        on totals.district_code = shares.district_code
        and totals.share_month = shares.share_month
        and feed_operators.operator_code = shares.operator
    where shares.operator is null
    group by totals.district_code, totals.share_month
)

select totals.district_code, totals.share_month, totals.total_share, totals.operators, missing.operators_missing
from totals
left join missing
    on totals.district_code = missing.district_code
    and totals.share_month = missing.share_month
where abs(totals.total_share - 1) > 0.01 or missing.operators_missing > 0
