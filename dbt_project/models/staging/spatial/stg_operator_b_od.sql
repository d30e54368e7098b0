-- 联通出行OD: operator B (CUCC) trips between districts per day (see macros/operator_od.sql); the day is
-- the delivered stat_date (YYYYMMDD).
{{ operator_od_staging(
    'operator_b_od', origin='origin_district', destination='dest_district', trips='trips',
    stat_date="try_cast(substr(trim(stat_date), 1, 4) || '-' || substr(trim(stat_date), 5, 2) || '-' || substr(trim(stat_date), 7, 2) as date)"
) }}
