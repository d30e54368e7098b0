"""The people & organisations pool on a small generated city, checked against the generator's ground
truth: who is a registered resident where, which identifiers were made invalid, and that no raw
identifier reaches the pool. Deliveries go through the nightly job's Dagster ingestion assets like
production; the people models (and their dbt tests) are then built by dbt on that lake."""

from __future__ import annotations

import csv
import re
import shutil
from collections import Counter
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from citybrain.settings import REPO_ROOT
from citybrain.transform import udfs
from tests.demo_lake import dbt_build, demo_lake, ingest

DAYS = ["2026-11-19", "2026-11-20"]
# Hangzhou districts touched by redistricting, by the official record (catalog/division_changes.csv): 江干
# 330104 split in 2021 (its 下沙/白杨 streets to 钱塘 330114, the rest to 上城 330102), 萧山 330109 gave five
# streets to 钱塘, 下城 330103 merged into 拱墅 330105, 余杭 330110's 临平 townships became 临平 330113,
# 萧山市 330181 → 330109; and Shanghai Pudong (南汇 310119 merged in 2009): across provinces. The demo
# writes stale codes with the township in the address where one decides.
COUNTIES = ["330102", "330109", "330105", "330113", "330114", "310115"]
PEOPLE_MODELS = [
    "dim_resident",
    "dim_enterprise",
    "fct_insurance_enrolment",
    "fct_hotline_ticket",
    "fct_service_application",
]
PEOPLE_SELECTION = [
    *(f"+{m}" for m in PEOPLE_MODELS),
    "+int_identity__rejected_identifiers",
    "+int_divisions__unmapped_codes",
    "+snap_household_registry",
    "+snap_legal_entities",
    "dim_district",  # the relationships tests' parent
]
RESIDENT_ID = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
MOBILE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
PSEUDONYM = re.compile(r"[0-9a-f]{64}")  # a keyed hash: its digit runs are not identifiers


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    home = tmp_path_factory.mktemp("people_city")
    with demo_lake(home, COUNTIES, DAYS, residents=3000, defect_rate=0.05):
        assert ingest(DAYS[0], DAYS[-1]).success
        proc = dbt_build(home / "warehouse.duckdb", tmp_path_factory.mktemp("dbt_target"), PEOPLE_SELECTION)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]  # models, snapshots, dbt tests
        truth = ground_truth(home)
        # The pseudonym of every true resident ID, with the lake's own salt.
        truth["key"] = {i: udfs.pseudonym(i) for i in truth["residents"]["id_number"]}
        yield {"home": home, "dbt_log": proc.stdout, **truth}


def ground_truth(home: Path) -> dict:
    gt = home / "demo" / "ground_truth"
    with open(gt / "defects.csv", encoding="utf-8", newline="") as f:
        defects = list(csv.DictReader(f))
    residents = pd.read_parquet(gt / "residents.parquet")
    registry = [d for d in defects if d["feed"] == "household_registry"]

    def clean_ids(kind: str) -> set[str]:
        return {d["detail"].removeprefix("clean_id=") for d in registry if d["defect"] == kind}

    quarantined = {  # registry records the raw layer could not load: their person is not in the registry
        d["detail"].removeprefix("clean_id=") if d["defect"] == "missing_key" else d["record_key"]
        for d in registry
        if d["layer"] == "raw"
    }
    bad_rows = {d["row_number"] for d in registry if d["defect"] == "bad_check_digit"}
    bad_copies = [
        d
        for d in registry
        if d["defect"] == "duplicate_row" and d["detail"].removeprefix("copy of row ") in bad_rows
    ]
    return {
        "defects": defects,
        "residents": residents,
        "legacy": clean_ids("legacy_15_digit_id"),
        "bad_check": clean_ids("bad_check_digit"),
        "bad_check_records": len(bad_rows) + len(bad_copies),
        "not_registered": clean_ids("bad_check_digit") | quarantined,
        # delivered with a retired code the record of changes gives no successor: no district
        "orphaned": {d["record_key"] for d in registry if d["defect"] == "retired_code_without_successor"},
    }


def sql(home: Path, query: str, params=None) -> list[tuple]:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(query, params or []).fetchall()
    finally:
        con.close()


def keys_of(city, ids) -> set[str]:
    return {city["key"][i] for i in ids}


# Every valid registered resident, before dim_resident's k-anonymity suppression (indicators count here).
RESIDENTS = "intermediate.int_people__residents"


def test_registered_population_per_district_equals_valid_registry_residents(city):
    residents = city["residents"]
    valid = residents[~residents["id_number"].isin(city["not_registered"])]
    orphaned = valid["id_number"].isin(city["orphaned"])
    # Stale codes go to the successor the official record names (township in the address for a split);
    # a retired code without a recorded successor gives no district, never a guessed one.
    expected = Counter(valid.loc[~orphaned, "home_county"]) + Counter({None: int(orphaned.sum())})
    actual = dict(sql(city["home"], f"SELECT district_code, count(*) FROM {RESIDENTS} GROUP BY 1"))
    assert actual == dict(expected)
    assert orphaned.any() and set(actual) == {*COUNTIES, None}
    (keys,) = sql(city["home"], f"SELECT count(DISTINCT resident_key) FROM {RESIDENTS}")[0]
    assert keys == len(valid)
    in_pool = {k for (k,) in sql(city["home"], f"SELECT resident_key FROM {RESIDENTS}")}
    assert in_pool == keys_of(city, valid["id_number"])


def test_dim_resident_leaves_out_exactly_the_residents_of_small_equivalence_classes(city):
    """k-anonymity (GB/T 37964): from the ground truth, group the valid residents by sex, 5-year age band,
    school stage and district; dim_resident holds exactly those whose group has at least k members."""
    from citybrain.privacy.config import min_equivalence_class

    k = min_equivalence_class()
    residents = city["residents"]
    valid = residents[~residents["id_number"].isin(city["not_registered"])].copy()
    as_of = date.fromisoformat(DAYS[-1])
    born = pd.to_datetime(valid["birth_date"]).dt.date
    age = pd.Series(
        [as_of.year - b.year - ((as_of.month, as_of.day) < (b.month, b.day)) for b in born], index=valid.index
    )
    valid["band"] = ["85+" if a >= 85 else f"{a // 5 * 5:02d}-{a // 5 * 5 + 4:02d}" for a in age]
    valid["stage"] = ["primary" if 6 <= a <= 11 else "junior" if 12 <= a <= 14 else "-" for a in age]
    # the pool's district: none for a record whose retired code has no recorded successor
    valid["district"] = valid["home_county"].where(~valid["id_number"].isin(city["orphaned"]), "-")
    size = valid.groupby(["sex", "band", "stage", "district"])["id_number"].transform("size")
    kept = keys_of(city, valid.loc[size >= k, "id_number"])
    assert 0 < len(kept) < len(valid)  # a 3,000-resident city has small classes: some are suppressed
    in_pool = {key for (key,) in sql(city["home"], "SELECT resident_key FROM pool.dim_resident")}
    assert in_pool == kept
    (smallest,) = sql(
        city["home"],
        "SELECT min(n) FROM (SELECT count(*) AS n FROM pool.dim_resident "
        "GROUP BY sex, age_band, school_stage, district_code)",
    )[0]
    assert smallest >= k


def test_ages_and_school_stages_follow_the_ground_truth(city):
    residents = city["residents"]
    valid = residents[~residents["id_number"].isin(city["not_registered"])]
    as_of = date.fromisoformat(DAYS[-1])
    born = pd.to_datetime(valid["birth_date"]).dt.date
    age = [as_of.year - b.year - ((as_of.month, as_of.day) < (b.month, b.day)) for b in born]
    band = {
        city["key"][i]: ("85+" if a >= 85 else f"{a // 5 * 5:02d}-{a // 5 * 5 + 4:02d}")
        for i, a in zip(valid["id_number"], age, strict=True)
    }
    actual = dict(sql(city["home"], f"SELECT resident_key, age_band FROM {RESIDENTS}"))
    assert actual == band
    (primary,) = sql(city["home"], f"SELECT count(*) FROM {RESIDENTS} WHERE school_stage = 'primary'")[0]
    assert primary == sum(6 <= a <= 11 for a in age)


def test_legacy_15_digit_ids_join_the_same_person_across_departments(city):
    home, legacy = city["home"], city["legacy"]
    assert legacy
    legacy_keys = keys_of(city, legacy)
    in_pool = {k for (k,) in sql(home, f"SELECT resident_key FROM {RESIDENTS}")}
    assert legacy_keys <= in_pool
    insured = set(city["residents"].query("employed")["id_number"])
    legacy_insured = keys_of(city, legacy & insured)
    assert legacy_insured, "no legacy-ID resident is employed: pick another seed"
    joined = {
        k
        for (k,) in sql(
            home, "SELECT DISTINCT resident_key FROM pool.fct_insurance_enrolment WHERE resident_in_registry"
        )
    }
    assert legacy_insured <= joined
    # Every person applicant with a registered ID carries the resident's key (legacy ones included).
    applicants = sql(
        home,
        "SELECT applicant_key, resident_key IS NOT NULL FROM pool.fct_service_application a "
        f"LEFT JOIN {RESIDENTS} r ON a.applicant_key = r.resident_key WHERE applicant_kind = 'person'",
    )
    unregistered = keys_of(city, city["not_registered"])
    assert applicants
    assert all(joined_ == (key not in unregistered) for key, joined_ in applicants)
    applied = {i for (i,) in sql(home, "SELECT DISTINCT applicant_id FROM raw.egov_applications")}
    assert keys_of(city, legacy & applied) <= {key for key, joined_ in applicants if joined_}


def test_a_bad_check_digit_never_reaches_the_pool(city):
    home = city["home"]
    bad_keys = keys_of(city, city["bad_check"])
    delivered = [d["record_key"] for d in city["defects"] if d["defect"] == "bad_check_digit"]
    assert bad_keys and delivered
    assert all(udfs.ric_problem(x) == "bad_check_digit" for x in delivered)
    in_pool = {k for (k,) in sql(home, "SELECT resident_key FROM pool.dim_resident")}
    assert not bad_keys & in_pool
    assert not {udfs.pseudonym(x) for x in delivered} & in_pool  # not "repaired" either
    # Their insurance records stay (the department's ID is valid) but do not join the registry.
    flags = sql(
        home,
        "SELECT DISTINCT resident_in_registry FROM pool.fct_insurance_enrolment WHERE list_contains(?, resident_key)",
        [sorted(bad_keys)],
    )
    assert flags in ([], [(False,)])


def test_rejected_identifier_counts_equal_the_injected_invalid_ones(city):
    injected_uscc = sum(d["defect"] == "invalid_uscc_check_char" for d in city["defects"])
    expected = {
        ("household_registry", "id_number", "bad_check_digit"): city["bad_check_records"],
        ("legal_entities", "uscc", "bad_check_char"): injected_uscc,
    }
    rows = sql(
        city["home"],
        "SELECT feed, identifier, reason, records FROM intermediate.int_identity__rejected_identifiers",
    )
    assert {(f, i, r): n for f, i, r, n in rows} == expected


def test_employers_missing_from_the_entity_registry_keep_their_enrolments(city):
    home = city["home"]
    missing = {d["record_key"] for d in city["defects"] if d["defect"] == "employer_not_in_entity_registry"}
    assert missing
    rows = sql(
        home,
        "SELECT unit_id, bool_or(employer_in_registry), bool_or(enterprise_key IS NOT NULL), count(*) "
        "FROM pool.fct_insurance_enrolment WHERE list_contains(?, unit_id) GROUP BY 1",
        [sorted(missing)],
    )
    assert {r[0] for r in rows} == missing
    assert all(not flagged and not keyed and n > 0 for _, flagged, keyed, n in rows)
    (orphans,) = sql(
        home,
        "SELECT count(*) FROM pool.fct_insurance_enrolment f LEFT JOIN pool.dim_enterprise e "
        "USING (enterprise_key) WHERE f.enterprise_key IS NOT NULL AND e.enterprise_key IS NULL",
    )[0]
    assert orphans == 0


def test_hotline_and_application_flags_match_the_injected_defects(city):
    home = city["home"]

    def injected(kind):
        return {d["record_key"] for d in city["defects"] if d["defect"] == kind}

    def flagged(query):
        return {k for (k,) in sql(home, query)}

    assert injected("closed_before_received") == flagged(
        "SELECT ticket_id FROM pool.fct_hotline_ticket WHERE closed_before_received"
    )
    assert injected("cross_region") == flagged(
        "SELECT application_id FROM pool.fct_service_application WHERE cross_region"
    )
    assert injected("missing_completion") == flagged(
        "SELECT application_id FROM pool.fct_service_application WHERE missing_completion"
    )
    days = {str(d) for (d,) in sql(home, "SELECT DISTINCT received_date FROM pool.fct_hotline_ticket")}
    assert days == set(DAYS)


def test_no_raw_identifier_name_or_phone_anywhere_in_the_pool(city):
    home = city["home"]
    residents = city["residents"]
    names, phones = set(residents["name"]), set(residents["phone"].dropna())
    columns = sql(
        home,
        "SELECT table_name, column_name FROM duckdb_columns() WHERE schema_name = 'pool' AND data_type = 'VARCHAR'",
    )
    assert {t for t, _ in columns} >= set(PEOPLE_MODELS)
    restricted = {"id_number", "applicant_id", "phone", "caller_phone", "address", "birth_date"}
    assert not {c for _, c in columns} & restricted
    # Legal representatives only masked to the surname (张*); descriptions only scrubbed (checked below).
    masked = sql(home, "SELECT DISTINCT legal_representative FROM pool.dim_enterprise WHERE legal_representative IS NOT NULL")  # fmt: skip
    assert masked and all(re.fullmatch(r"[^*]{1,2}\*+|\*", v) for (v,) in masked)
    (scrubbed,) = sql(home, "SELECT count(*) FROM pool.fct_hotline_ticket WHERE description LIKE '%****%'")[0]
    assert scrubbed > 0  # the demo injects phones and IDs into descriptions
    leaks = []
    for table, column in columns:
        for (value,) in sql(
            home, f'SELECT DISTINCT "{column}" FROM pool."{table}" WHERE "{column}" IS NOT NULL'
        ):
            if PSEUDONYM.fullmatch(value):
                continue
            ids = [m for m in RESIDENT_ID.findall(value) if udfs.ric_problem(m) is None]
            if ids or MOBILE.search(value) or value in names or value in phones:
                leaks.append((table, column, value))
    assert not leaks


def test_registry_snapshot_keeps_only_pseudonymous_columns(city):
    home = city["home"]
    columns = {c for (c,) in sql(home, "SELECT column_name FROM duckdb_columns() WHERE schema_name = 'snapshots' AND table_name = 'snap_household_registry'")}  # fmt: skip
    assert columns == {
        "resident_key", "sex", "district_code", "registered_on",
        "dbt_scd_id", "dbt_updated_at", "dbt_valid_from", "dbt_valid_to",
    }  # fmt: skip
    (current,) = sql(
        home, "SELECT count(*) FROM snapshots.snap_household_registry WHERE dbt_valid_to IS NULL"
    )[0]
    (residents,) = sql(home, f"SELECT count(*) FROM {RESIDENTS}")[0]
    assert current == residents


def test_dbt_ran_the_people_checks(city):
    for check in ("people_no_identifiers_in_pool", "people_identity_reconciles", "people_hotline_durations"):
        assert re.search(rf"PASS {check}\b", city["dbt_log"]), check
    assert "snapshotted snapshots.snap_household_registry" in city["dbt_log"]


def test_the_identifier_check_fails_on_an_id_or_a_mobile_planted_in_the_pool(city, tmp_path):
    """people_no_identifiers_in_pool on a copy of the pool with a real resident's ID written into an
    enterprise name and into an enrolment status (the same ID twice: each row fails, though the ID is
    checked once) and a mobile number into another enrolment status: exactly those three rows fail; an
    18-digit number whose check digit is wrong, a pseudonym and short values do not."""
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copyfile(city["home"] / "warehouse.duckdb", warehouse)
    resident_id = sorted(city["key"])[0]
    wrong_check = resident_id[:17] + ("0" if resident_id[17] != "0" else "1")
    con = duckdb.connect(str(warehouse))
    try:
        con.execute(
            "UPDATE pool.dim_enterprise SET name = ? WHERE enterprise_key = (SELECT min(enterprise_key) FROM pool.dim_enterprise)",
            [f"法定代表人身份证{resident_id}号"],
        )
        con.execute(
            "UPDATE pool.dim_enterprise SET name = ? WHERE enterprise_key = (SELECT max(enterprise_key) FROM pool.dim_enterprise)",
            [f"编号{wrong_check}"],
        )
        con.execute(
            "UPDATE pool.fct_insurance_enrolment SET status = '13912345678' WHERE insured_id = (SELECT min(insured_id) FROM pool.fct_insurance_enrolment)"
        )
        con.execute(
            "UPDATE pool.fct_insurance_enrolment SET status = ? WHERE insured_id = (SELECT max(insured_id) FROM pool.fct_insurance_enrolment)",
            [f"证件:{resident_id}"],
        )
    finally:
        con.close()
    proc = dbt_build(warehouse, tmp_path / "target", ["people_no_identifiers_in_pool"])
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert re.search(r"FAIL 3 people_no_identifiers_in_pool\b", proc.stdout), proc.stdout[-3000:]


def test_registry_snapshot_tells_where_a_resident_lived_on_a_date(city, tmp_path):
    """A resident moves (a later registry snapshot gives another district): the snapshot keeps both
    versions. Played on a copy of the lake so the other tests keep theirs."""
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copyfile(city["home"] / "warehouse.duckdb", warehouse)
    residents = city["residents"]
    clean = residents[
        ~residents["id_number"].isin(city["not_registered"] | city["legacy"] | city["orphaned"])
    ]
    mover = clean[clean["home_county"] == COUNTIES[0]].iloc[0]
    key = city["key"][mover["id_number"]]
    con = duckdb.connect(str(warehouse))
    try:
        (before,) = con.execute(
            "SELECT dbt_valid_from FROM snapshots.snap_household_registry WHERE resident_key = ?", [key]
        ).fetchone()
        moved = con.execute(
            "UPDATE raw.household_registry SET hukou_district = ? WHERE id_number = ?",
            [COUNTIES[1], mover["id_number"]],
        ).fetchone()
    finally:
        con.close()
    assert moved[0] >= 1
    proc = dbt_build(
        warehouse,
        tmp_path / "target",
        ["stg_household_registry", "int_identity__residents", "snap_household_registry"],
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        versions = con.execute(
            "SELECT district_code, dbt_valid_to IS NULL FROM snapshots.snap_household_registry "
            "WHERE resident_key = ? ORDER BY dbt_valid_from",
            [key],
        ).fetchall()
        on_date = con.execute(
            "SELECT district_code FROM snapshots.snap_household_registry WHERE resident_key = ? "
            "AND dbt_valid_from <= ? AND (dbt_valid_to > ? OR dbt_valid_to IS NULL)",
            [key, before, before],
        ).fetchall()
        (others_changed,) = con.execute(
            "SELECT count(*) FROM snapshots.snap_household_registry WHERE dbt_valid_to IS NOT NULL"
        ).fetchone()
    finally:
        con.close()
    assert versions == [(COUNTIES[0], False), (COUNTIES[1], True)]
    assert on_date == [(COUNTIES[0],)]
    assert others_changed == 1


# -- division changes (catalog/division_changes.csv) -------------------------------------------------------
def _registry_defects(city, kind: str) -> list[dict]:
    """Registry defects of a kind, with their detail 'current=.. delivered=.. township=..' parsed."""
    return [
        {**d, **dict(kv.split("=", 1) for kv in d["detail"].split(" "))}
        for d in city["defects"]
        if d["feed"] == "household_registry" and d["defect"] == kind
    ]


def test_stale_division_codes_go_to_the_successor_the_official_record_names(city):
    """Each registry record the demo delivered with a code from before a redistricting is in the county
    the official record names: merges (下城 -> 拱墅), renames, a split decided by the township its address
    names (江干 with 白杨/下沙街道 -> 钱塘, else -> 上城) and a transfer (萧山's 河庄.. streets -> 钱塘).
    Expected values are the demo's, which reads the record itself (not the pipeline's crosswalk)."""
    stale = _registry_defects(city, "retired_district_code")
    got = dict(
        sql(
            city["home"],
            "SELECT _row_number, district_code FROM staging.stg_household_registry WHERE _row_number IN "
            f"({', '.join(d['row_number'] for d in stale)})",
        )
    )
    assert got == {int(d["row_number"]): d["current"] for d in stale}
    assert {"330103", "330104"} <= {d["delivered"] for d in stale}
    assert any(d["township"] for d in stale)  # a split or transfer decided by township


def test_retired_code_without_successor_is_reported_not_guessed(city):
    """A retired code the record of changes gives no successor for: the record keeps no district and is
    counted under reason retired_code_without_successor (duplicates of such a record too)."""
    orphans = _registry_defects(city, "retired_code_without_successor")
    rows = {d["row_number"] for d in orphans}
    copies = [
        d
        for d in city["defects"]
        if d["feed"] == "household_registry"
        and d["defect"] == "duplicate_row"
        and d["detail"].removeprefix("copy of row ") in rows
    ]
    with open(REPO_ROOT / "catalog" / "division_changes.csv", encoding="utf-8", newline="") as f:
        without = {r["old_code"] for r in csv.DictReader(f) if r["kind"] == "retired"}
    assert orphans and {d["delivered"] for d in orphans} <= without
    districts = sql(
        city["home"],
        "SELECT DISTINCT district_code FROM staging.stg_household_registry WHERE _row_number IN "
        f"({', '.join(rows)})",
    )
    assert districts == [(None,)]
    reported = sql(
        city["home"],
        "SELECT district_code_delivered, records FROM intermediate.int_divisions__unmapped_codes "
        "WHERE feed = 'household_registry' AND reason = 'retired_code_without_successor'",
    )
    assert {c for c, _ in reported} == {d["delivered"] for d in orphans}
    assert sum(n for _, n in reported) == len(orphans) + len(copies)
