-- Indicators per district and month that no single department can compute: registered (police)
-- against telecom-estimated population, and public services per estimated resident.
-- "Residents" below = telecom-estimated night-time residents (int_indicators__district_presence).
-- Open tier: the counts of people (registered population, school-age children, insured employees, and the
-- estimated night-time and daytime populations) go through suppress_small (macros/masking.sql): above 0 and
-- below k (catalog/privacy.yaml) is null with its *_suppressed flag true, and so is every ratio computed
-- from it (it would give the count back). No total over districts is published, so these need no
-- complements; the estimated populations are sums of grid cells whose suppression in fct_presence_hourly
-- is complemented per district and hour (docs/GOVERNANCE.md "Small-cell suppression").
-- Ratios divide doubles: a decimal literal (1.0 * n) stays a decimal of limited scale on Spark.
with months as (
    select distinct district_code, month from {{ ref('int_indicators__district_presence') }}
),

registered as (
    select
        district_code,
        count(*) as registered_population,
        sum(case when school_stage = 'primary' then 1 else 0 end) as primary_school_age_children
    from {{ ref('int_people__residents') }}  -- before dim_resident's k-anonymity suppression
    group by district_code
),

facilities as (
    select
        district_code,
        sum(
            case
                when
                    facility_type in (
                        'hospital', 'community_health_centre', 'clinic', 'township_health_centre'
                    )
                    then coalesce(beds, 0)
                else 0
            end
        ) as hospital_beds,
        sum(
            case
                when
                    facility_type in (
                        'hospital', 'community_health_centre', 'clinic', 'township_health_centre'
                    )
                    then coalesce(doctors, 0)
                else 0
            end
        ) as doctors,
        sum(
            case
                when facility_type in ('primary_school', 'nine_year_school') then coalesce(capacity, 0) else 0
            end
        ) as primary_school_seats
    from {{ ref('dim_facility') }}
    where not coalesce(outside_city, false)
    group by district_code
),

tickets as (
    select
        district_code,
        cast({{ dbt.date_trunc('month', 'received_date') }} as date) as month,
        count(*) as hotline_tickets,
        {{ median_of("response_hours") }} as median_response_hours,
        {{ median_of("closure_hours") }} as median_closure_hours
    from {{ ref('fct_hotline_ticket') }}
    group by district_code, cast({{ dbt.date_trunc('month', 'received_date') }} as date)
),

applications as (
    select
        district_code,
        cast({{ dbt.date_trunc('month', 'submitted_date') }} as date) as month,
        count(*) as service_applications,
        avg(case when at_most_one_visit then 1 else 0 end) as share_at_most_one_visit,
        avg(case when is_online then 1 else 0 end) as share_online
    from {{ ref('fct_service_application') }}
    group by district_code, cast({{ dbt.date_trunc('month', 'submitted_date') }} as date)
),

insured as (
    select district_code, count(distinct resident_key) as insured_employees
    from {{ ref('fct_insurance_enrolment') }}
    where is_active
    group by district_code
),

enterprises as (
    select district_code, count(*) as active_enterprises
    from {{ ref('dim_enterprise') }}
    where is_active
    group by district_code
)

select
    m.district_code,
    m.month,
    cast({{ suppress_small('coalesce(r.registered_population, 0)') }} as bigint) as registered_population,
    {{ small_cell('coalesce(r.registered_population, 0)') }} as registered_population_suppressed,
    {{ suppress_small('p.night_population') }} as est_resident_population,
    {{ small_cell('p.night_population') }} as est_resident_population_suppressed,
    {{ suppress_small('p.day_population') }} as est_daytime_population,
    {{ small_cell('p.day_population') }} as est_daytime_population_suppressed,
    cast(coalesce(f.hospital_beds, 0) as bigint) as hospital_beds,
    cast(coalesce(f.doctors, 0) as bigint) as doctors,
    1000.0
    * coalesce(f.hospital_beds, 0)
    / nullif({{ suppress_small('p.night_population') }}, 0) as beds_per_1000_residents,
    1000.0
    * coalesce(f.doctors, 0)
    / nullif({{ suppress_small('p.night_population') }}, 0) as doctors_per_1000_residents,
    cast(coalesce(f.primary_school_seats, 0) as bigint) as primary_school_seats,
    cast(
        {{ suppress_small('coalesce(r.primary_school_age_children, 0)') }} as bigint
    ) as primary_school_age_children,
    {{ small_cell('coalesce(r.primary_school_age_children, 0)') }} as primary_school_age_children_suppressed,
    cast(coalesce(f.primary_school_seats, 0) as double)
    / nullif({{ suppress_small('r.primary_school_age_children') }}, 0) as seats_per_school_age_child,
    a.share_near_medical as share_residents_near_medical,
    a.share_near_primary_school as share_residents_near_primary_school,
    cast(coalesce(t.hotline_tickets, 0) as bigint) as hotline_tickets,
    10000.0
    * coalesce(t.hotline_tickets, 0)
    / nullif({{ suppress_small('p.night_population') }}, 0) as tickets_per_10k_residents,
    t.median_response_hours,
    t.median_closure_hours,
    cast(coalesce(s.service_applications, 0) as bigint) as service_applications,
    s.share_at_most_one_visit,
    s.share_online,
    cast({{ suppress_small('coalesce(i.insured_employees, 0)') }} as bigint) as insured_employees,
    {{ small_cell('coalesce(i.insured_employees, 0)') }} as insured_employees_suppressed,
    cast(coalesce(e.active_enterprises, 0) as bigint) as active_enterprises,
    cast({{ suppress_small('coalesce(i.insured_employees, 0)') }} as double)
    / nullif(e.active_enterprises, 0) as insured_per_active_enterprise
from months as m
left join
    {{ ref('int_indicators__district_presence') }} as p
    on m.district_code = p.district_code and m.month = p.month
left join registered as r on m.district_code = r.district_code
left join facilities as f on m.district_code = f.district_code
left join
    {{ ref('int_indicators__district_access') }} as a
    on m.district_code = a.district_code and m.month = a.month
left join tickets as t on m.district_code = t.district_code and m.month = t.month
left join applications as s on m.district_code = s.district_code and m.month = s.month
left join insured as i on m.district_code = i.district_code
left join enterprises as e on m.district_code = e.district_code
