-- 电信出行OD: operator C (CTCC) trips between districts per day (see macros/operator_od.sql).
{{ operator_od_staging('operator_c_od', origin='origin', destination='destination', trips='volume') }}
