-- Records kept out of the pool because their identifier fails validation, counted per feed and reason.
-- Nothing is guessed: a bad check digit is not "repaired". Records = delivered rows for the full-snapshot
-- registries and the daily applications, current versions for the incremental insurance tables.
-- An e-government applicant_id is rejected when neither the resident-ID nor the USCC validator accepts it;
-- the reason is the one of the validator matching the declared applicant type.
with problems as (
    select 'household_registry' as feed, 'id_number' as identifier, id_number_problem as reason
    from {{ ref('stg_household_registry') }}
    where id_number_problem is not null

    union all

    select 'legal_entities' as feed, 'uscc' as identifier, uscc_problem as reason
    from {{ ref('stg_legal_entities') }}
    where uscc_problem is not null

    union all

    select 'si_insured' as feed, 'id_number' as identifier, id_number_problem as reason
    from {{ ref('int_people__si_insured_current') }}
    where id_number_problem is not null

    union all

    select 'si_unit' as feed, 'uscc' as identifier, uscc_problem as reason
    from {{ ref('int_people__si_units_current') }}
    where uscc_problem is not null

    union all

    select
        'egov_applications' as feed,
        'applicant_id' as identifier,
        case when applicant_type = '法人' then applicant_id_uscc_problem else applicant_id_ric_problem end
            as reason
    from {{ ref('stg_egov_applications') }}
    where application_id is not null
        and applicant_resident_id is null
        and applicant_uscc is null
)

select
    feed,
    identifier,
    reason,
    count(*) as records
from problems
group by feed, identifier, reason
