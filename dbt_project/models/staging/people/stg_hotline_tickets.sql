{{ config(materialized=udf_view_materialization()) }}
-- 12345热线工单: ticket versions from the hotline API, one row per version fetched (a rerun with
-- updated_since adds late updates as new rows). The partition is the day the ticket was received.
-- description and caller_phone are restricted (free text with phone / ID numbers): kept here, never pooled.
with {{ staging_source('hotline_tickets') }},

renamed as (
    select
        nullif({{ halfwidth('ticket_id') }}, '') as ticket_id,
        {{ shanghai_timestamp(halfwidth('received_at')) }} as received_at,
        nullif({{ halfwidth('channel') }}, '') as channel,
        nullif({{ halfwidth('category') }}, '') as category,
        nullif({{ halfwidth('district_code') }}, '') as district_code_delivered,
        nullif({{ halfwidth('description') }}, '') as description,
        nullif({{ halfwidth('caller_phone') }}, '') as caller_phone,
        nullif({{ halfwidth('handling_unit') }}, '') as handling_unit,
        nullif({{ halfwidth('status') }}, '') as status,
        {{ shanghai_timestamp(halfwidth('closed_at')) }} as closed_at,
        {{ shanghai_timestamp(halfwidth('updated_at')) }} as updated_at,
        cast(_partition as date) as partition_date,
        {{ lineage_columns() }}
    from source
)

{{ select_with_district_code() }}
