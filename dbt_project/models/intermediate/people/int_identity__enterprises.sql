-- One row per valid USCC in the legal-entity registry: its latest record (updated_at, then load time,
-- then the last row of the file). Invalid USCCs are left out (counted in int_identity__rejected_identifiers).
with entities as (
    select
        uscc,
        name,
        legal_representative,
        entity_type,
        registered_capital_wan,
        established_on,
        district_code,
        district_code_delivered,
        industry_code, status, updated_at, _source_file, _row_number, _batch_id, _loaded_at
    from {{ ref('stg_legal_entities') }}
    where uscc is not null
),

ranked as (
    select
        entities.*,
        count(*) over (partition by uscc) as delivered_rows,
        row_number() over (
            partition by uscc
            order by updated_at desc nulls last, _loaded_at desc, _row_number desc
        ) as recency
    from entities
)

select
    uscc as enterprise_key,
    name,
    legal_representative,
    entity_type,
    registered_capital_wan,
    established_on,
    district_code,
    district_code_delivered,
    industry_code,
    status,
    updated_at,
    delivered_rows,
    _source_file,
    _row_number,
    _batch_id,
    _loaded_at
from ranked
where recency = 1
