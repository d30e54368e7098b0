-- Subscriber share of each operator per current district, with the days it applies to: a month's share
-- applies from its first day until the next delivered month; the earliest month also covers every day
-- before it. Shares outside 0-1, unknown districts and operators the catalog does not declare (sources.yaml
-- `operators`) are left out (counted in int_spatial__rejected_records); a share delivered twice for a month
-- keeps the latest load.
with shares as (
    select
        *,
        row_number() over (
            partition by district_code, operator, share_month order by _loaded_at desc, _row_number desc
        ) as version
    from {{ ref('stg_operator_market_share') }}
    where district_code is not null
        and operator in (select operator_code from {{ source('reference', 'operators') }})
        and subscriber_share > 0 and subscriber_share <= 1
        and share_month is not null
),

current_shares as (
    select district_code, operator, share_month, subscriber_share from shares where version = 1
)

select
    district_code,
    operator,
    share_month,
    subscriber_share,
    case
        when
            share_month = min(share_month) over (partition by district_code, operator)
            then cast('1900-01-01' as date)
        else share_month
    end as valid_from,
    coalesce(
        lead(share_month) over (partition by district_code, operator order by share_month),
        cast('9999-12-31' as date)
    ) as valid_to
from current_shares
