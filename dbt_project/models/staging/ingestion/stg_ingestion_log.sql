-- Deliveries processed by ingestion, typed and with the quarantine breakdown kept as JSON.
-- Every ingestion asset writes the log, so this model runs after all of them (kept in sync with the
-- catalog by tests/test_dbt_project.py):
-- depends_on: {{ source('raw', 'household_registry') }}
-- depends_on: {{ source('raw', 'legal_entities') }}
-- depends_on: {{ source('raw', 'medical_facilities') }}
-- depends_on: {{ source('raw', 'schools') }}
-- depends_on: {{ source('raw', 'si_unit') }}
-- depends_on: {{ source('raw', 'si_insured') }}
-- depends_on: {{ source('raw', 'hotline_tickets') }}
-- depends_on: {{ source('raw', 'egov_applications') }}
-- depends_on: {{ source('raw', 'operator_a_presence') }}
-- depends_on: {{ source('raw', 'operator_b_presence') }}
-- depends_on: {{ source('raw', 'operator_c_presence') }}
-- depends_on: {{ source('raw', 'operator_c_cells') }}
-- depends_on: {{ source('raw', 'operator_a_od') }}
-- depends_on: {{ source('raw', 'operator_b_od') }}
-- depends_on: {{ source('raw', 'operator_c_od') }}
-- depends_on: {{ source('raw', 'operator_market_share') }}
with source as (
    select * from {{ source('raw', 'ingestion_log') }}
),

renamed as (
    select
        log_id,
        feed_id,
        provider,
        cast(partition_key as date) as partition_date,
        source_file,
        file_sha256,
        batch_id,
        status,
        rows_received,
        rows_loaded,
        rows_quarantined,
        quarantined_by_reason,
        started_at,
        finished_at
    from source
)

select * from renamed
