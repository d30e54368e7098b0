{#-
  SCD2 history of dim_facility (hospitals, clinics, schools, base stations): name, type, district,
  position and capacity as the monthly / termly snapshots said from dbt_valid_from to dbt_valid_to, so
  beds or seats per resident can be computed as of a past month. Facilities missing from a later full
  snapshot get dbt_valid_to set.
-#}
{% snapshot snap_facilities %}
{{
    config(
        unique_key='facility_key',
        strategy='check',
        check_cols=['name', 'facility_type', 'district_code', 'lng', 'lat', 'grid_id', 'beds', 'doctors', 'capacity', 'enrolment', 'outside_city'],
        hard_deletes='invalidate',
    )
}}
select
    facility_key,
    source,
    facility_type,
    name,
    district_code,
    lng,
    lat,
    grid_id,
    beds,
    doctors,
    capacity,
    enrolment,
    outside_city
from {{ ref('dim_facility') }}
{% endsnapshot %}
