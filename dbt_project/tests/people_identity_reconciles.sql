-- Nothing is silently dropped: every registry row with a valid ID is in int_identity__residents (as
-- one of its delivered_rows), every other row is counted as rejected; every current insurance record is
-- in fct_insurance_enrolment or counted as rejected. Returns the feeds that do not add up.
{{ config(meta={'dagster': {'ref': {'name': 'int_identity__rejected_identifiers'}}}) }}
with registry as (
    select
        (select count(*) from {{ ref('stg_household_registry') }}) as delivered,
        (select sum(delivered_rows) from {{ ref('int_identity__residents') }}) as kept,
        (select coalesce(sum(records), 0) from {{ ref('int_identity__rejected_identifiers') }}
            where feed = 'household_registry') as rejected
),

insurance as (
    select
        (select count(*) from {{ ref('int_people__si_insured_current') }}) as delivered,
        (select count(*) from {{ ref('fct_insurance_enrolment') }}) as kept,
        (select coalesce(sum(records), 0) from {{ ref('int_identity__rejected_identifiers') }}
            where feed = 'si_insured') as rejected
),

entities as (
    select
        (select count(*) from {{ ref('stg_legal_entities') }}) as delivered,
        (select sum(delivered_rows) from {{ ref('dim_enterprise') }} as d
            inner join {{ ref('int_identity__enterprises') }} as i on d.enterprise_key = i.enterprise_key) as kept,
        (select coalesce(sum(records), 0) from {{ ref('int_identity__rejected_identifiers') }}
            where feed = 'legal_entities') as rejected
)

select 'household_registry' as feed, delivered, kept, rejected from registry where delivered <> coalesce(kept, 0) + rejected
union all
select 'si_insured' as feed, delivered, kept, rejected from insurance where delivered <> kept + rejected
union all
select 'legal_entities' as feed, delivered, kept, rejected from entities where delivered <> coalesce(kept, 0) + rejected
