{#-
  Desensitisation (DESIGN.md §5, docs/GOVERNANCE.md), one macro each, dispatched like domain.sql: one
  `default__<name>` while the engines agree, an engine that differs adds `<adapter>__<name>`. On DuckDB
  they compile to calls of dedicated functions (cb_mask_*, cb_scrub_*, cb_age_*, cb_pseudonym: SQL macros
  in citybrain/transform/sql/masking.sql, Python UDFs in udfs.py where validation is needed): the
  build-time lineage check (citybrain/governance/classification.py) recognises masking by those names, so
  a model must call these macros, not re-implement them inline. The keyed-hash pseudonym is `pseudonym` in
  domain.sql. On Spark the same names are Spark SQL functions (citybrain/transform/sql/masking_spark.sql)
  and Python UDFs (citybrain/scale/spark_functions.py).
-#}

{#- Resident ID for display: first 6 and last 4 characters kept, '110105********002X'. -#}
{% macro mask_resident_id(expr) %}{{ return(adapter.dispatch('mask_resident_id', 'citybrain')(expr)) }}{% endmacro %}
{% macro default__mask_resident_id(expr) %}cb_mask_id({{ expr }}){% endmacro %}

{#- Phone number for display: first 3 and last 4 digits kept, '138****1234'. -#}
{% macro mask_phone(expr) %}{{ return(adapter.dispatch('mask_phone', 'citybrain')(expr)) }}{% endmacro %}
{% macro default__mask_phone(expr) %}cb_mask_phone({{ expr }}){% endmacro %}

{#- Person name for display: the surname kept, '张*' (two-character compound surnames: '欧阳**'). -#}
{% macro mask_name(expr) %}{{ return(adapter.dispatch('mask_name', 'citybrain')(expr)) }}{% endmacro %}
{% macro default__mask_name(expr) %}cb_mask_name({{ expr }}){% endmacro %}

{#- Free text de-identified (citybrain/privacy/scrub.py): valid IDs, cards, phones, e-mail, plates, person names
    (the warehouse registry's as dictionary) and addresses below the township masked; other numbers untouched. -#}
{% macro scrub_text(expr) %}{{ return(adapter.dispatch('scrub_text', 'citybrain')(expr)) }}{% endmacro %}
{% macro default__scrub_text(expr) %}cb_scrub_text({{ expr }}){% endmacro %}

{#- Generalisation of a birth date: whole years of age at as_of, and the five-year band
    ('00-04' ... '80-84', '85+'). Null for an unknown or future birth date. -#}
{% macro age_years(birth_date, as_of) %}{{ return(adapter.dispatch('age_years', 'citybrain')(birth_date, as_of)) }}{% endmacro %}
{% macro default__age_years(birth_date, as_of) %}cb_age_years({{ birth_date }}, {{ as_of }}){% endmacro %}
{% macro age_band(birth_date, as_of) %}{{ return(adapter.dispatch('age_band', 'citybrain')(birth_date, as_of)) }}{% endmacro %}
{% macro default__age_band(birth_date, as_of) %}cb_age_band({{ birth_date }}, {{ as_of }}){% endmacro %}

{#-
  Desensitisation chosen by the PII kind of the catalog (catalog/sources.yaml), so a model declares what it
  exposes: {{ desensitise('caller_phone', 'phone') }}. `method` overrides the default of the kind:
    resident_id, person_or_org_id: pseudonym (keyed hash; 'mask' for display)
    person_name: mask          phone: mask          free_text: scrub
    birth_date: age_band (needs as_of; 'age_years' for whole years)
    precise_location: grid (expr = 'lat, lng' pair is not supported here: call grid_cell(lat, lng))
  address has no automatic method: generalise it to its district or grid explicitly.
-#}
{% macro desensitise(expr, pii, method=none, as_of=none) %}
    {%- set defaults = {
        'resident_id': 'pseudonym', 'person_or_org_id': 'pseudonym', 'person_name': 'mask', 'phone': 'mask',
        'free_text': 'scrub', 'birth_date': 'age_band',
    } -%}
    {%- set chosen = method or defaults.get(pii) -%}
    {%- if chosen is none -%}
        {{ exceptions.raise_compiler_error("desensitise: no default method for PII kind '" ~ pii ~ "' (address and precise_location are generalised explicitly: district, grid_cell)") }}
    {%- endif -%}
    {%- if chosen == 'pseudonym' and pii in ('resident_id', 'person_or_org_id') -%}{{ pseudonym(expr) }}
    {%- elif chosen == 'mask' and pii in ('resident_id', 'person_or_org_id') -%}{{ mask_resident_id(expr) }}
    {%- elif chosen == 'mask' and pii == 'person_name' -%}{{ mask_name(expr) }}
    {%- elif chosen == 'mask' and pii == 'phone' -%}{{ mask_phone(expr) }}
    {%- elif chosen == 'scrub' and pii == 'free_text' -%}{{ scrub_text(expr) }}
    {%- elif chosen in ('age_band', 'age_years') and pii == 'birth_date' -%}
        {%- if as_of is none -%}{{ exceptions.raise_compiler_error("desensitise: birth_date needs as_of") }}{%- endif -%}
        {%- if chosen == 'age_band' -%}{{ age_band(expr, as_of) }}{%- else -%}{{ age_years(expr, as_of) }}{%- endif -%}
    {%- else -%}
        {{ exceptions.raise_compiler_error("desensitise: method '" ~ chosen ~ "' does not apply to PII kind '" ~ pii ~ "'") }}
    {%- endif -%}
{% endmacro %}

{#-
  Small-cell suppression of a count of people in an open table: a count above 0 and below k becomes null;
  0 and counts of at least k stay. `small_cell(count_expr)` is the flag column that goes with it (true where
  suppressed), so a null is never mistaken for "unknown". k is `small_cell_k()`: the SQL function
  cb_small_cell_k() that citybrain/privacy/small_cells.py defines on every connection from
  catalog/privacy.yaml (the one home of k; no dbt var). Estimated, fractional populations are counts of
  people too: 0.4 of a person is suppressed. Complementary suppression (a cell of at least k hidden so a
  suppressed one cannot be recovered from a published total) is macros/small_cells.sql.
-#}
{% macro small_cell_k() -%}cb_small_cell_k(){%- endmacro %}
{% macro suppress_small(count_expr) -%}
    case when ({{ count_expr }}) > 0 and ({{ count_expr }}) < {{ small_cell_k() }} then null else ({{ count_expr }}) end
{%- endmacro %}
{% macro small_cell(count_expr) -%}
    coalesce(({{ count_expr }}) > 0 and ({{ count_expr }}) < {{ small_cell_k() }}, false)
{%- endmacro %}
