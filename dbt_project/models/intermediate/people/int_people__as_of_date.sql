-- The day ages are computed at: the newest day the people data describes — the last day partition delivered
-- by the hotline and e-government feeds, or the registry's latest registration when the registry snapshot is
-- newer (a resident registered after the last daily partition must not get an age "before birth": every
-- registration follows the birth it records); today when there is no data.
-- var('as_of_date') overrides it.
with known_days as (
    select max(partition_date) as last_day from {{ ref('stg_hotline_tickets') }}
    union all
    select max(partition_date) as last_day from {{ ref('stg_egov_applications') }}
    union all
    select max(registered_on) as last_day from {{ ref('int_identity__residents') }}
)

select
    {% if var('as_of_date', none) -%}
    cast('{{ var("as_of_date") }}' as date)
    {%- else -%}
    coalesce(max(last_day), current_date)
    {%- endif %} as as_of_date
from known_days
