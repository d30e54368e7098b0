-- 移动出行OD: operator A (CMCC) trips between districts per day (see macros/operator_od.sql).
{{ operator_od_staging('operator_a_od', origin='o_adcode', destination='d_adcode', trips='trip_cnt') }}
