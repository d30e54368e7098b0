-- The day ages are computed at: the last day partition delivered by the people feeds (hotline tickets,
-- e-government applications), so a rebuild of old data gives the ages of then; today when there is none.
-- var('as_of_date') overrides it.
with partitions as (
    select max(partition_date) as last_day from {{ ref('stg_hotline_tickets') }}
    union all
    select max(partition_date) as last_day from {{ ref('stg_egov_applications') }}
)

select
    {% if var('as_of_date', none) -%}
    cast('{{ var("as_of_date") }}' as date)
    {%- else -%}
    coalesce(max(last_day), current_date)
    {%- endif %} as as_of_date
from partitions
