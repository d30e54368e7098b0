{#- `expr` with every one of `texts` removed: nested replace() calls, one per text, in the order given
    (both engines' replace). -#}
{% macro remove_all(expr, texts) -%}
    {%- set ns = namespace(sql=expr) -%}
    {%- for text in texts -%}
        {%- set ns.sql = "replace(" ~ ns.sql ~ ", '" ~ text ~ "', '')" -%}
    {%- endfor -%}
    {{ ns.sql }}
{%- endmacro %}
