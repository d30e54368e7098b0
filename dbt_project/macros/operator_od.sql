{#-
  The staging model of one operator's OD feed, in the common OD shape of all operators: each operator
  delivers the same facts under its own column names, so a model is one call of this macro.
  District codes map to current codes through the crosswalk (retired codes to their successor; codes of
  no division of the city stay null). '<5' = suppressed: trips null, is_suppressed true.
    feed: the raw table (its operator code is the catalog's, macros/operator_feeds.sql); origin / destination /
    trips: delivered columns; stat_date: an expression for the day (default: the partition day).
-#}
{% macro operator_od_staging(feed, origin, destination, trips, stat_date="cast(_partition as date)") %}
with {{ staging_source(feed) }},

renamed as (
    select
        {{ operator_code(feed) }} as operator,
        {{ stat_date }} as stat_date,
        nullif(trim({{ origin }}), '') as origin_code_delivered,
        nullif(trim({{ destination }}), '') as destination_code_delivered,
        {{ count_or_null(trips) }} as trips,
        coalesce({{ suppressed_flag(trips) }}, false) as is_suppressed,
        cast(_partition as date) as partition_date,
        {{ lineage_columns() }}
    from source
)

select
    renamed.operator,
    renamed.stat_date,
    renamed.origin_code_delivered,
    renamed.destination_code_delivered,
    origin.maps_to as origin_district_code,
    destination.maps_to as destination_district_code,
    renamed.trips,
    renamed.is_suppressed,
    renamed.partition_date,
    {{ lineage_columns('renamed') }}
from renamed
left join crosswalk as origin on renamed.origin_code_delivered = origin.code
left join crosswalk as destination on renamed.destination_code_delivered = destination.code
{% endmacro %}
