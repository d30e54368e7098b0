"""Small-cell suppression in the open tier (docs/GOVERNANCE.md "Small-cell suppression").

* k has one home (catalog/privacy.yaml) and reaches the dbt models, the blocking check and the resource
  catalog from it;
* the models hide small cells and their complements (dbt unit tests on data that breaks the rule);
* the blocking check finds each kind of breach in planted tables (a published cell of 3, a group whose
  total gives its only hidden cell away, hidden cells summing to less than k, a ratio left published, a
  missing row), and passes a correctly suppressed table;
* the first-principles recomputation (tests/small_cells_recompute.py) finds the same breaches, so its
  clean result on a real published lake (tests/test_quality_gate.py) means something;
* every open model with a column named like a count of people or trips has the check in its suite.

Expected values come from the planted numbers and from arithmetic in the test, never from the pipeline's
suppression code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from citybrain.privacy.config import small_cell_k
from citybrain.quality.small_cells import rule_small_cells
from citybrain.quality.suites import load_suites
from citybrain.settings import REPO_ROOT
from tests.small_cells_recompute import (
    COUNT_NAME,
    NOT_A_COUNT,
    count_columns,
    recoverable_groups,
    small_published_values,
)

DBT = str(Path(sys.executable).with_name("dbt"))


@pytest.fixture(scope="module")
def dbt_dir(tmp_path_factory) -> Path:
    """One warehouse and target for the module's dbt calls, so they share dbt's parse state."""
    return tmp_path_factory.mktemp("small_cells_dbt")


def _dbt(directory: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [DBT, *args, "--profiles-dir", ".", "--target-path", str(directory / "target"),
         "--log-path", str(directory / "target")],
        cwd=REPO_ROOT / "dbt_project",
        env={**os.environ, "CITYBRAIN_WAREHOUSE": str(directory / "warehouse.duckdb"),
             "CITYBRAIN_HOME": str(directory), "CITYBRAIN_PSEUDONYM_SALT": "test-salt", **env},
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip


@pytest.fixture
def privacy_k20(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "privacy.yaml"
    path.write_text("small_cell_k: 20\n", encoding="utf-8")
    monkeypatch.setenv("CITYBRAIN_PRIVACY", str(path))
    return path


def test_the_default_k_is_ten():
    assert small_cell_k() == 10


def test_k_reaches_dbt_the_check_and_the_catalog_from_the_privacy_file(dbt_dir, privacy_k20):
    """One k: a privacy file with k = 20 changes what dbt compares with (the cb_small_cell_k() function
    defined on dbt's own connection), the check's threshold and the catalog's wording, with no dbt var."""
    proc = _dbt(
        dbt_dir, "show", "--inline", "select {{ small_cell_k() }} as k, {{ suppress_small('15') }} as shown",
        "--output", "json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    assert '"k": 20' in proc.stdout and '"shown": null' in proc.stdout, proc.stdout[-1500:]

    made = rule_small_cells(None, None, counts={"n": "n_suppressed"})
    assert "< 20" in made[0].unexpected_rows_query and made[0].meta["small_cell_k"] == 20

    from citybrain.resource_catalog.build import _open_conditions

    assert "小于 20 的单元格已抑制" in _open_conditions("open", small_cells=True)
    assert "抑制" not in _open_conditions("conditional")  # conditional tables are not small-cell suppressed


def test_no_dbt_var_or_literal_k_is_left_in_the_models():
    """k is never a dbt var or a hard-coded 10 next to a suppression: only small_cell_k() / cb_small_cell_k()."""
    project = (REPO_ROOT / "dbt_project" / "dbt_project.yml").read_text(encoding="utf-8")
    assert "small_cell_k" not in project
    sources = [REPO_ROOT / "dbt_project" / folder for folder in ("models", "macros", "tests", "snapshots")]
    for path in (p for folder in sources for p in folder.rglob("*.sql")):
        text = path.read_text(encoding="utf-8")
        assert "var('small_cell_k'" not in text and 'var("small_cell_k"' not in text, path


def test_the_models_hide_small_cells_and_complements(dbt_dir):
    """dbt unit tests (dbt_project/models/pool/spatial/_small_cells_unit_tests.yml): a cell of 3 with its
    complement, two small cells that protect each other, a small observed count behind a large estimate,
    crossed OD margins."""
    names = ["fct_presence_hourly_hides_small_cells_and_complements", "fct_od_daily_complements_both_margins"]
    proc = _dbt(dbt_dir, "test", "--select", *names)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr
    assert "PASS=2" in proc.stdout


def test_a_cell_hidden_in_an_earlier_build_of_the_day_stays_hidden(dbt_dir):
    """A day rebuilt after a late delivery: cell a1 was 3 (hidden, with a3 as its complement) and is now 30.
    Shown now, a1 would give the first version's hidden a3 back (73 - 50 - 3 = 20 from the first version's
    published total) and a3 the hidden a1; so both stay hidden. A full refresh, which forgets, shows both."""
    day = "2026-11-01"
    with duckdb.connect(str(dbt_dir / "warehouse.duckdb")) as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS intermediate; CREATE SCHEMA IF NOT EXISTS pool")
        con.execute("DROP TABLE IF EXISTS pool.fct_presence_hourly")
        con.execute(
            "CREATE OR REPLACE TABLE pool.fct_presence_hourly_unsuppressed AS "
            "SELECT grid_id, 'A' AS district_code, DATE '2026-11-01' AS stat_date, "
            "TIMESTAMPTZ '2026-11-01 03:00:00+08' AS hour_start, est AS est_population, "
            "est AS observed_subscribers, 1.0::DOUBLE AS share_covered, 3 AS operators_reporting, "
            "3 AS operators_listing, 0 AS suppressed_operators "
            "FROM (VALUES ('a1', 3.0::DOUBLE), ('a2', 50.0), ('a3', 20.0)) AS v(grid_id, est)"
        )

    def build(*extra: str) -> dict[str, float | None]:
        proc = _dbt(dbt_dir, "run", "--select", "fct_presence_hourly", *extra,
                    CITYBRAIN_MIN_DATE=day, CITYBRAIN_MAX_DATE=day)  # fmt: skip
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
        with duckdb.connect(str(dbt_dir / "warehouse.duckdb"), read_only=True) as con:
            return dict(
                con.execute("SELECT grid_id, est_population FROM pool.fct_presence_hourly").fetchall()
            )

    assert build() == {"a1": None, "a2": 50.0, "a3": None}
    with duckdb.connect(str(dbt_dir / "warehouse.duckdb")) as con:
        con.execute("UPDATE pool.fct_presence_hourly_unsuppressed SET est_population = 30, "
                    "observed_subscribers = 30 WHERE grid_id = 'a1'")  # fmt: skip
    assert build() == {"a1": None, "a2": 50.0, "a3": None}
    assert build("--full-refresh") == {"a1": 30.0, "a2": 50.0, "a3": 20.0}


# --- the blocking check, on planted tables -------------------------------------------------------------


def _planted(published: list[tuple], truth: list[tuple]) -> duckdb.DuckDBPyConnection:
    """pool.cells as published (district, cell, n, n_suppressed) and intermediate.truth (district, cell, n)."""
    con = duckdb.connect()
    con.execute("CREATE SCHEMA pool; CREATE SCHEMA intermediate")
    con.execute("CREATE TABLE pool.cells (district VARCHAR, cell VARCHAR, n DOUBLE, n_suppressed BOOLEAN)")
    con.execute("CREATE TABLE intermediate.truth (district VARCHAR, cell VARCHAR, n DOUBLE)")
    if published:
        con.executemany("INSERT INTO pool.cells VALUES (?, ?, ?, ?)", published)
    con.executemany("INSERT INTO intermediate.truth VALUES (?, ?, ?)", truth)
    return con


def _failures(con: duckdb.DuckDBPyConnection, **extra) -> list[str]:
    """Descriptions of the check's expectations that return rows (as GX would fail them)."""
    made = rule_small_cells(
        None, None, counts={"n": "n_suppressed"}, source="intermediate.truth", key=["cell"], value="n",
        margins=[["district"]], **extra,
    )  # fmt: skip
    failed = []
    for expectation in made:
        query = expectation.unexpected_rows_query.format(batch="(SELECT * FROM pool.cells) AS batch")
        if con.execute(query).fetchall():
            failed.append(expectation.description)
    return failed


TRUTH = [("A", "a1", 3), ("A", "a2", 50), ("A", "a3", 20), ("A", "a4", 0), ("B", "b1", 4), ("B", "b2", 7)]


def test_the_check_passes_a_suppressed_table():
    published = [("A", "a1", None, True), ("A", "a2", 50, False), ("A", "a3", None, True), ("A", "a4", 0, False),
                 ("B", "b1", None, True), ("B", "b2", None, True)]  # fmt: skip
    assert _failures(_planted(published, TRUTH)) == []


def test_the_check_finds_a_published_cell_of_three():
    published = [("A", "a1", 3, False), ("A", "a2", 50, False), ("A", "a3", 20, False), ("A", "a4", 0, False),
                 ("B", "b1", None, True), ("B", "b2", None, True)]  # fmt: skip
    failed = _failures(_planted(published, TRUTH))
    assert len(failed) == 1 and "above 0 and below k = 10" in failed[0]


def test_the_check_finds_a_group_whose_total_reveals_its_only_hidden_cell():
    # a1 (3) hidden alone: district A's total 73 minus the published 50 + 20 + 0 gives 3 back
    published = [("A", "a1", None, True), ("A", "a2", 50, False), ("A", "a3", 20, False), ("A", "a4", 0, False),
                 ("B", "b1", None, True), ("B", "b2", None, True)]  # fmt: skip
    failed = _failures(_planted(published, TRUTH))
    assert len(failed) == 1 and "district group" in failed[0]


def test_the_check_finds_hidden_cells_that_sum_to_less_than_k():
    truth = [("A", "a1", 2), ("A", "a2", 3), ("A", "a3", 40)]
    published = [("A", "a1", None, True), ("A", "a2", None, True), ("A", "a3", 40, False)]  # hidden sum 5
    failed = _failures(_planted(published, truth))
    assert len(failed) == 1 and "district group" in failed[0]


def test_the_check_counts_a_missing_row_as_hidden():
    # b2 (7) is not published at all: B's total minus nothing published still hides 2 cells (4 + 7 >= 10),
    # but dropping b1's row too while publishing b2 would leave b1 alone.
    published = [("A", "a1", None, True), ("A", "a2", 50, False), ("A", "a3", None, True), ("A", "a4", 0, False),
                 ("B", "b2", None, True)]  # fmt: skip
    assert _failures(_planted(published, TRUTH)) == []
    published[-1] = ("B", "b2", 7, False)
    failed = _failures(_planted(published, TRUTH))
    assert any("district group" in f for f in failed) and any("below k" in f for f in failed)


def test_the_check_finds_a_flag_on_a_published_value_and_a_published_ratio():
    con = _planted([("A", "a2", 50, True)], [("A", "a2", 50)])
    failed = _failures(con)
    assert any("flag is set" in f for f in failed)
    con = _planted([("A", "a2", None, True)], [("A", "a2", 50)])
    con.execute("ALTER TABLE pool.cells ADD COLUMN per_1000 DOUBLE DEFAULT 2.5")
    failed = _failures(con, ratios={"n_suppressed": ["per_1000"]})
    assert any("flag is set" in f for f in failed)


def test_the_check_follows_k_from_the_privacy_file(privacy_k20):
    published = [("A", "a1", None, True), ("A", "a2", 50, False), ("A", "a3", None, True), ("A", "a4", 0, False),
                 ("B", "b1", None, True), ("B", "b2", None, True)]  # fmt: skip
    failed = _failures(_planted(published, TRUTH))  # B hides 4 + 7 = 11 < 20
    assert len(failed) == 1 and "k = 20" in failed[0]


# --- the first-principles recomputation, on planted tables ---------------------------------------------


def test_the_recomputation_finds_what_an_open_user_could_recover():
    truth = pd.DataFrame(TRUTH, columns=["district", "cell", "n"])
    good = pd.DataFrame(
        [("a1", None), ("a2", 50), ("a3", None), ("a4", 0), ("b1", None), ("b2", None)], columns=["cell", "n"]
    )
    assert recoverable_groups(truth, good, ["cell"], "n", ["district"], 10).empty
    one_hidden = good.copy()
    one_hidden.loc[one_hidden.cell == "a3", "n"] = 20
    bad = recoverable_groups(truth, one_hidden, ["cell"], "n", ["district"], 10)
    assert bad.district.tolist() == ["A"] and bad.recovered_hidden_sum.tolist() == [3]

    con = duckdb.connect()
    con.execute("CREATE SCHEMA pool")
    con.execute("CREATE TABLE pool.t AS SELECT * FROM (VALUES (3.0, 2.5, 0.5, 12)) AS v(est_population, "
                "beds_per_1000_residents, share_near, registered_population)")  # fmt: skip
    assert count_columns(con) == {"t": ["est_population", "registered_population"]}
    assert small_published_values(con, 10) == [("t", "est_population", 3.0)]


# --- coverage: every open count is checked -------------------------------------------------------------


def test_every_open_model_with_counts_of_people_has_the_check():
    """A column named like a count of people or trips in an open model must be listed in its suite's
    citybrain_small_cells (anything added later included)."""
    manifest = json.loads(
        (REPO_ROOT / "dbt_project" / "target" / "manifest.json").read_text(encoding="utf-8")
    )
    suites = {s.table_name: s for s in load_suites() if s.schema_name == "pool"}
    missing = []
    for node in manifest["nodes"].values():
        if node["resource_type"] != "model" or node["config"].get("meta", {}).get("classification") != "open":
            continue
        counts = [c for c in node["columns"] if COUNT_NAME.search(c) and not NOT_A_COUNT.search(c)]
        suite = suites.get(node["name"])
        checked = set()
        for entry in suite.expectations if suite else []:
            if entry.kind == "citybrain_small_cells" and entry.severity == "blocking":
                checked |= set(entry.arguments["counts"])
        missing += [f"{node['name']}.{c}" for c in counts if c not in checked]
    assert not missing, missing
