-- Equivalence classes (等价类) of one table over its declared quasi-identifiers (准标识符), GB/T 37964:
-- records sharing the same values of every quasi-identifier form one class; a NULL is a value like any
-- other (GROUP BY puts all NULLs of a column in one group, as an attacker matching "unknown" would).
-- Placeholders filled by citybrain/privacy/reidentification.py: {relation} (quoted table name) and
-- {quasi_identifiers} (quoted column list); $min_class is the configured minimum class size.
with classes as (
    select count(*) as class_size
    from {relation}
    group by {quasi_identifiers}
)

select
    coalesce(sum(class_size), 0) as records,
    count(*) as classes,
    min(class_size) as smallest_class,
    count(*) filter (where class_size = 1) as unique_records,
    count(*) filter (where class_size < $min_class) as classes_below_minimum,
    coalesce(sum(class_size) filter (where class_size < $min_class), 0) as records_below_minimum
from classes
