-- Registered residents (户籍人口) by pseudonymous key: sex, 5-year age band, school stage and current
-- hukou district (int_people__residents). Never the raw ID, name, phone, address or birth date.
-- De-identified to k-anonymity (GB/T 37964, docs/GOVERNANCE.md "Re-identification risk"): a resident whose
-- equivalence class over the model's declared quasi-identifiers (meta.quasi_identifiers) has fewer than
-- var('min_equivalence_class') records is suppressed here (记录抑制); publication measures the classes
-- again and refuses the table if one is still too small. The registration date is not published at all:
-- a day-precise date is nearly unique per person.
with residents as (
    select * from {{ ref('int_people__residents') }}
)

{{ suppress_small_classes(
    'residents', ['resident_key', 'sex', 'age_band', 'school_stage', 'district_code']
) }}
