{#
  Record suppression to k-anonymity (GB/T 37964 抑制): select `columns` of `relation` (a CTE or ref), leaving
  out every record whose equivalence class — the records with the same values of every quasi-identifier —
  has fewer than var('min_equivalence_class') records. The quasi-identifiers are the model's own declaration
  (config meta `quasi_identifiers` in its YAML), so the list the publication check measures and the list
  suppressed here are one list. NULL is a value: PARTITION BY groups NULLs together, as GROUP BY does in the
  publication check (citybrain/privacy/sql/equivalence_classes.sql). The minimum is
  catalog/privacy.yaml's min_equivalence_class, passed in as a var (tests/test_reidentification.py checks
  that the two agree).
#}
{% macro suppress_small_classes(relation, columns) -%}
    {%- set meta = config.get('meta') or {} -%}
    {%- set quasi_identifiers = meta.get('quasi_identifiers') or [] -%}
    {%- if execute and not quasi_identifiers -%}
        {{ exceptions.raise_compiler_error("suppress_small_classes: " ~ model.name ~ " declares no meta.quasi_identifiers") }}
    {%- endif -%}
    select {{ columns | join(', ') }}
    from (
        select
            {{ relation }}.*,
            count(*) over (partition by {{ quasi_identifiers | join(', ') }}) as equivalence_class_size
        from {{ relation }}
    ) as classed
    where equivalence_class_size >= {{ var('min_equivalence_class') }}
{%- endmacro %}
