{{ daily_incremental_config('received_date') }}
-- 12345 hotline tickets, one row per ticket in its latest version, partitioned by the day received.
-- Response time: hours from received_at to the first moment the lake saw the ticket past 受理 (accepted),
-- i.e. the earliest updated_at of a version with status 办理中 or 已办结, or closed_at if earlier.
-- The API serves each ticket's latest version at fetch time, so a ticket first fetched already closed has
-- its response at closure at the latest. Closure time: hours from received_at to closed_at; null (and
-- flagged) when closed_at is before received_at. The caller's phone is restricted and never enters the pool;
-- the free-text description does, scrubbed (macros/masking.sql -> citybrain/privacy/scrub.py): names,
-- addresses, phones, IDs, bank cards, e-mail and plates in it are masked, other numbers (order numbers,
-- amounts) stay.
with versions as (
    select
        *,
        coalesce(partition_date, cast(received_at as date)) as received_date
    from {{ ref('stg_hotline_tickets') }}
    where ticket_id is not null
),

-- The run's days, and every earlier day that received a changed ticket since the last build (late updates,
-- fetched nightly by updated_since for the catalog's late_update_days): those days are rebuilt whole.
windowed as (
    select * from versions
    where true {{ partition_window('received_date') }}
    {%- if is_incremental()
        and 'last_loaded_at' in adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list %}
        or received_date in (
            select received_date from versions
            where _loaded_at > (select max(last_loaded_at) from {{ this }})
        )
    {%- endif %}
),

ranked as (
    select
        windowed.*,
        row_number() over (
            partition by ticket_id
            order by updated_at desc nulls last, _loaded_at desc, _row_number desc
        ) as recency,
        min(case when status <> '受理' then updated_at end) over (partition by ticket_id) as first_progress_at,
        max(_loaded_at) over (partition by ticket_id) as last_loaded_at
    from windowed
),

latest as (
    select
        ranked.*,
        case
            when closed_at is not null and closed_at >= received_at
                and (first_progress_at is null or closed_at < first_progress_at)
                then closed_at
            else first_progress_at
        end as responded_at
    from ranked
    where recency = 1
)

select
    cast(ticket_id as {{ dbt.type_string() }}) as ticket_id,
    received_at,
    cast(received_date as date) as received_date,
    cast(channel as {{ dbt.type_string() }}) as channel,
    cast(category as {{ dbt.type_string() }}) as category,
    cast(district_code as {{ dbt.type_string() }}) as district_code,
    cast({{ desensitise('description', 'free_text') }} as {{ dbt.type_string() }}) as description,
    cast(handling_unit as {{ dbt.type_string() }}) as handling_unit,
    cast(status as {{ dbt.type_string() }}) as status,
    coalesce(status = '已办结', false) as is_closed,
    closed_at,
    updated_at as last_updated_at,
    last_loaded_at,
    case
        when responded_at >= received_at
            then cast({{ dbt.datediff('received_at', 'responded_at', 'second') }} as double) / 3600  -- noqa: LT05
    end as response_hours,
    case
        when closed_at >= received_at
            then cast({{ dbt.datediff('received_at', 'closed_at', 'second') }} as double) / 3600  -- noqa: LT05
    end as closure_hours,
    coalesce(closed_at < received_at, false) as closed_before_received
from latest
