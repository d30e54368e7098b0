{#-
    Township (乡镇街道) resolution of split or transferred division codes.

    reference.division_crosswalk gives one successor per delivered code; when a county was split (江干区
    330104 in 2021) or lost townships to a new one (萧山区 330109 -> 钱塘区), the approval lists which
    townships went where (reference.division_townships, from catalog/division_changes.csv). A record whose
    text names one of those townships goes to its successor; naming townships of two different successors
    decides nothing (the crosswalk's stated successor stands).

    township_successors(relation, code, text): a query of (code, text, maps_to) for the distinct
    (code, text) pairs of `relation` that name a listed township. Left join it on both columns and take
    coalesce(township.maps_to, crosswalk.maps_to). Portable SQL (DuckDB and Spark: instr).
-#}
{% macro township_successors(relation, code, text) %}
    select
        records.{{ code }} as code,
        records.{{ text }} as text,
        case when count(distinct townships.maps_to) = 1 then min(townships.maps_to) end as maps_to
    from (
        select distinct {{ code }}, {{ text }} from {{ relation }}
        where {{ code }} in (select code from {{ source('reference', 'division_townships') }})
    ) as records
    inner join {{ source('reference', 'division_townships') }} as townships
        on records.{{ code }} = townships.code
        and instr(records.{{ text }}, townships.township) > 0
    group by records.{{ code }}, records.{{ text }}
{% endmacro %}
