-- The desensitisation functions of masking.sql as Spark SQL functions (temporary, per session, the
-- Thrift Server runs one shared session). Same names, same results, registered by
-- citybrain/scale/spark_functions.py. Keep the two files in step: tests/test_spark_parity.py compares.

create or replace temporary function cb_mask_id(v string) returns string return
    case
        when v is null then null
        when length(v) <= 10 then repeat('*', length(v))
        else left(v, 6) || repeat('*', length(v) - 10) || right(v, 4)
    end;

create or replace temporary function cb_mask_phone(v string) returns string return
    case
        when v is null then null
        when length(v) <= 7 then repeat('*', length(v))
        else left(v, 3) || repeat('*', length(v) - 7) || right(v, 4)
    end;

create or replace temporary function cb_mask_name(v string) returns string return
    case
        when v is null then null
        when length(v) <= 1 then '*'
        when length(v) >= 3 and left(v, 2) in (
            '欧阳', '司马', '上官', '诸葛', '东方', '皇甫', '尉迟', '公孙', '慕容', '长孙',
            '宇文', '司徒', '夏侯', '轩辕', '令狐', '端木', '独孤', '南宫', '西门', '百里'
        ) then left(v, 2) || repeat('*', length(v) - 2)
        else left(v, 1) || repeat('*', length(v) - 1)
    end;

create or replace temporary function cb_age_years(birth date, as_of date) returns int return
    case
        when birth is null or as_of is null or birth > as_of then null
        else year(as_of) - year(birth)
            - case
                when month(as_of) < month(birth) or (month(as_of) = month(birth) and day(as_of) < day(birth))
                then 1 else 0
            end
    end;

create or replace temporary function cb_age_band(birth date, as_of date) returns string return
    case
        when cb_age_years(birth, as_of) is null then null
        when cb_age_years(birth, as_of) >= 85 then '85+'
        else lpad(cast(cb_age_years(birth, as_of) div 5 * 5 as string), 2, '0') || '-'
            || lpad(cast(cb_age_years(birth, as_of) div 5 * 5 + 4 as string), 2, '0')
    end;
