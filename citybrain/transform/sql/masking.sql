-- Desensitisation functions in plain SQL, created as temporary DuckDB macros on every dbt connection and
-- cursor (citybrain/transform/udfs.py). dbt models reach them only through dbt_project/macros/masking.sql.
-- The names (cb_mask_*, cb_age_*) are what the build-time lineage check recognises as masking
-- (citybrain/governance/classification.py), which is why they are named functions and not inlined SQL.

-- Resident ID for display: first 6 and last 4 characters, the rest starred (110105********002X).
create or replace temp macro cb_mask_id(v) as
    case
        when v is null then null
        when length(v) <= 10 then repeat('*', length(v))
        else left(v, 6) || repeat('*', length(v) - 10) || right(v, 4)
    end;

-- Phone number for display: first 3 and last 4 digits (138****1234).
create or replace temp macro cb_mask_phone(v) as
    case
        when v is null then null
        when length(v) <= 7 then repeat('*', length(v))
        else left(v, 3) || repeat('*', length(v) - 7) || right(v, 4)
    end;

-- Person name for display: the surname kept, every other character starred (张*, 欧阳**).
-- Two-character compound surnames are kept whole when the name has at least three characters.
create or replace temp macro cb_mask_name(v) as
    case
        when v is null then null
        when length(v) <= 1 then '*'
        when length(v) >= 3 and left(v, 2) in (
            '欧阳', '司马', '上官', '诸葛', '东方', '皇甫', '尉迟', '公孙', '慕容', '长孙',
            '宇文', '司徒', '夏侯', '轩辕', '令狐', '端木', '独孤', '南宫', '西门', '百里'
        ) then left(v, 2) || repeat('*', length(v) - 2)
        else left(v, 1) || repeat('*', length(v) - 1)
    end;

-- Age in whole years at as_of (null for a birth date after as_of).
create or replace temp macro cb_age_years(birth, as_of) as
    case
        when birth is null or as_of is null or birth > as_of then null
        else year(as_of) - year(birth)
            - case
                when month(as_of) < month(birth) or (month(as_of) = month(birth) and day(as_of) < day(birth))
                then 1 else 0
            end
    end;

-- Five-year age band at as_of: '00-04', '05-09', ..., '80-84', '85+'.
create or replace temp macro cb_age_band(birth, as_of) as
    case
        when cb_age_years(birth, as_of) is null then null
        when cb_age_years(birth, as_of) >= 85 then '85+'
        else lpad(cast(cb_age_years(birth, as_of) // 5 * 5 as varchar), 2, '0') || '-'
            || lpad(cast(cb_age_years(birth, as_of) // 5 * 5 + 4 as varchar), 2, '0')
    end;
