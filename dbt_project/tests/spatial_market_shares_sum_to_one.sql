-- The three operators' subscriber shares of a district and month add up to 1 (within 0.01): the fusion
-- divides by their sum, so a share delivered as a percentage or a missing operator shows up here.
select district_code, share_month, sum(subscriber_share) as total_share, count(*) as operators
from {{ ref('int_spatial__market_share') }}
group by district_code, share_month
having abs(sum(subscriber_share) - 1) > 0.01 or count(*) <> 3
