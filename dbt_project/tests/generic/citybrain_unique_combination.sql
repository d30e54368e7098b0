{#- Rows whose combination of `columns` is not unique (a compound key). -#}
{% test citybrain_unique_combination(model, columns) %}
select {{ columns | join(', ') }}, count(*) as occurrences
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
