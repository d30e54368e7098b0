{#-
  Domain functions, one macro each. On DuckDB they call the functions registered by
  citybrain/transform/dbt_plugin.py (python-stdnum, prcoords, h3); on Spark the functions of the same names
  registered by citybrain/scale/spark_functions.py. Where both engines take the same call, it is written once
  as `default__<name>`; an engine that needs another spelling adds `<adapter>__<name>` (adapter.dispatch):
  `spark__` casts coordinates to double (Spark Python UDFs take arguments as given, DuckDB's declared
  parameter types cast them).
-#}

{% macro halfwidth(expr) %}{{ return(adapter.dispatch('halfwidth', 'citybrain')(expr)) }}{% endmacro %}
{% macro default__halfwidth(expr) %}cb_halfwidth({{ expr }}){% endmacro %}

{#- Canonical 18-character resident ID (15-digit numbers upgraded, upper-case X), null when invalid. -#}
{% macro ric_normalize(expr) %}{{ return(adapter.dispatch('ric_normalize', 'citybrain')(expr)) }}{% endmacro %}
{% macro default__ric_normalize(expr) %}cb_ric_normalize({{ expr }}){% endmacro %}

{#- Why a resident ID is invalid: blank, bad_length, bad_format, bad_check_digit, bad_birth_date; null when valid. -#}
{% macro ric_problem(expr) %}{{ return(adapter.dispatch('ric_problem', 'citybrain')(expr)) }}{% endmacro %}
{% macro default__ric_problem(expr) %}cb_ric_problem({{ expr }}){% endmacro %}

{% macro ric_birth_date(expr) %}{{ return(adapter.dispatch('ric_birth_date', 'citybrain')(expr)) }}{% endmacro %}
{% macro default__ric_birth_date(expr) %}cb_ric_birth_date({{ expr }}){% endmacro %}

{#- 'M' or 'F' from the sequence digit of a valid ID. -#}
{% macro ric_sex(expr) %}{{ return(adapter.dispatch('ric_sex', 'citybrain')(expr)) }}{% endmacro %}
{% macro default__ric_sex(expr) %}cb_ric_sex({{ expr }}){% endmacro %}

{% macro uscc_normalize(expr) %}{{ return(adapter.dispatch('uscc_normalize', 'citybrain')(expr)) }}{% endmacro %}
{% macro default__uscc_normalize(expr) %}cb_uscc_normalize({{ expr }}){% endmacro %}

{#- Why a USCC is invalid: blank, bad_length, bad_format, bad_check_char; null when valid. -#}
{% macro uscc_problem(expr) %}{{ return(adapter.dispatch('uscc_problem', 'citybrain')(expr)) }}{% endmacro %}
{% macro default__uscc_problem(expr) %}cb_uscc_problem({{ expr }}){% endmacro %}

{#- WGS-84 longitude / latitude from GCJ-02 or BD-09; null outside China. -#}
{% macro gcj02_to_wgs84_lng(lng, lat) %}{{ return(adapter.dispatch('gcj02_to_wgs84_lng', 'citybrain')(lng, lat)) }}{% endmacro %}
{% macro duckdb__gcj02_to_wgs84_lng(lng, lat) %}cb_gcj02_to_wgs84_lng({{ lng }}, {{ lat }}){% endmacro %}
{% macro spark__gcj02_to_wgs84_lng(lng, lat) %}cb_gcj02_to_wgs84_lng(cast({{ lng }} as double), cast({{ lat }} as double)){% endmacro %}
{% macro gcj02_to_wgs84_lat(lng, lat) %}{{ return(adapter.dispatch('gcj02_to_wgs84_lat', 'citybrain')(lng, lat)) }}{% endmacro %}
{% macro duckdb__gcj02_to_wgs84_lat(lng, lat) %}cb_gcj02_to_wgs84_lat({{ lng }}, {{ lat }}){% endmacro %}
{% macro spark__gcj02_to_wgs84_lat(lng, lat) %}cb_gcj02_to_wgs84_lat(cast({{ lng }} as double), cast({{ lat }} as double)){% endmacro %}
{% macro bd09_to_wgs84_lng(lng, lat) %}{{ return(adapter.dispatch('bd09_to_wgs84_lng', 'citybrain')(lng, lat)) }}{% endmacro %}
{% macro duckdb__bd09_to_wgs84_lng(lng, lat) %}cb_bd09_to_wgs84_lng({{ lng }}, {{ lat }}){% endmacro %}
{% macro spark__bd09_to_wgs84_lng(lng, lat) %}cb_bd09_to_wgs84_lng(cast({{ lng }} as double), cast({{ lat }} as double)){% endmacro %}
{% macro bd09_to_wgs84_lat(lng, lat) %}{{ return(adapter.dispatch('bd09_to_wgs84_lat', 'citybrain')(lng, lat)) }}{% endmacro %}
{% macro duckdb__bd09_to_wgs84_lat(lng, lat) %}cb_bd09_to_wgs84_lat({{ lng }}, {{ lat }}){% endmacro %}
{% macro spark__bd09_to_wgs84_lat(lng, lat) %}cb_bd09_to_wgs84_lat(cast({{ lng }} as double), cast({{ lat }} as double)){% endmacro %}

{#- The H3 cell (resolution var('grid_resolution'), default 8) of a WGS-84 point: the pool's grid unit. -#}
{% macro grid_cell(lat, lng) %}{{ return(adapter.dispatch('grid_cell', 'citybrain')(lat, lng)) }}{% endmacro %}
{% macro duckdb__grid_cell(lat, lng) %}cb_h3_cell({{ lat }}, {{ lng }}, {{ var('grid_resolution', 8) }}){% endmacro %}
{% macro spark__grid_cell(lat, lng) %}cb_h3_cell(cast({{ lat }} as double), cast({{ lng }} as double), {{ var('grid_resolution', 8) }}){% endmacro %}
{% macro grid_cell_lat(cell) %}{{ return(adapter.dispatch('grid_cell_lat', 'citybrain')(cell)) }}{% endmacro %}
{% macro default__grid_cell_lat(cell) %}cb_h3_lat({{ cell }}){% endmacro %}
{% macro grid_cell_lng(cell) %}{{ return(adapter.dispatch('grid_cell_lng', 'citybrain')(cell)) }}{% endmacro %}
{% macro default__grid_cell_lng(cell) %}cb_h3_lng({{ cell }}){% endmacro %}

{#- Keyed-hash pseudonym (HMAC-SHA256; the salt comes from the environment, a missing salt is an error). -#}
{% macro pseudonym(expr) %}{{ return(adapter.dispatch('pseudonym', 'citybrain')(expr)) }}{% endmacro %}
{% macro default__pseudonym(expr) %}cb_pseudonym({{ expr }}){% endmacro %}

{#- A delivered local time text ('YYYY-MM-DD HH:MM:SS', or ISO 8601 with an offset) as a timestamp with time zone;
    texts without an offset are Asia/Shanghai. Unparsable text gives null. -#}
{% macro shanghai_timestamp(expr) %}{{ return(adapter.dispatch('shanghai_timestamp', 'citybrain')(expr)) }}{% endmacro %}
{% macro duckdb__shanghai_timestamp(expr) -%}
    case
        when regexp_matches(trim({{ expr }}), '([+-]\d{2}:?\d{2}|Z)$') then try_cast(trim({{ expr }}) as timestamptz)
        else timezone('Asia/Shanghai', try_cast(trim({{ expr }}) as timestamp))
    end
{%- endmacro %}
{#- Spark: a text with an offset casts to the instant; one without is read as UTC wall-clock time (the session
    time zone) and shifted from Asia/Shanghai. -#}
{% macro spark__shanghai_timestamp(expr) -%}
    case
        when trim({{ expr }}) rlike '([+-][0-9]{2}:?[0-9]{2}|Z)$' then try_cast(trim({{ expr }}) as timestamp)
        else {{ instant_at('try_cast(trim(' ~ expr ~ ') as timestamp)', 'Asia/Shanghai') }}
    end
{%- endmacro %}

{#- Great-circle distance in metres between two WGS-84 points (portable SQL). -#}
{% macro distance_m(lat1, lng1, lat2, lng2) -%}
    (2 * 6371008.8 * asin(sqrt(
        power(sin(radians({{ lat2 }} - {{ lat1 }}) / 2), 2)
        + cos(radians({{ lat1 }})) * cos(radians({{ lat2 }})) * power(sin(radians({{ lng2 }} - {{ lng1 }}) / 2), 2)
    )))
{%- endmacro %}

{#- A count delivered as text: '<5' style suppressed values give null (see suppressed_flag). -#}
{% macro count_or_null(expr) %}try_cast(nullif(trim({{ expr }}), '') as bigint){% endmacro %}
{% macro suppressed_flag(expr) %}(trim({{ expr }}) like '<%'){% endmacro %}

{#- Hour of day (0-23) of a timestamp with time zone, on the Asia/Shanghai clock. -#}
{% macro shanghai_hour(expr) %}{{ return(adapter.dispatch('shanghai_hour', 'citybrain')(expr)) }}{% endmacro %}
{% macro duckdb__shanghai_hour(expr) %}hour(timezone('Asia/Shanghai', {{ expr }})){% endmacro %}
{% macro spark__shanghai_hour(expr) %}hour({{ local_time(expr, 'Asia/Shanghai') }}){% endmacro %}

{#- ISO day of week (1 = Monday ... 7 = Sunday) of a date (Spark's weekday: 0 = Monday). -#}
{% macro iso_day_of_week(expr) %}{{ return(adapter.dispatch('iso_day_of_week', 'citybrain')(expr)) }}{% endmacro %}
{% macro duckdb__iso_day_of_week(expr) %}isodow({{ expr }}){% endmacro %}
{% macro spark__iso_day_of_week(expr) %}(weekday({{ expr }}) + 1){% endmacro %}

{#- Median of a numeric expression in an aggregate. -#}
{% macro median_of(expr) %}{{ return(adapter.dispatch('median_of', 'citybrain')(expr)) }}{% endmacro %}
{% macro default__median_of(expr) %}median({{ expr }}){% endmacro %}
