"""Optional differential privacy at publication (citybrain/privacy/dp.py), through the real ``publish``.

A tiny warehouse with open pool tables is published with DP on: the values must come out noisy,
non-negative integers, never 1..k-1, suppressed cells must stay suppressed, ratios must follow the noisy
counts, the spend must be recorded and re-publishing an unchanged period must not spend again, while a
changed period spends again until its budget refuses it. The noise scale is checked against the Laplace
variance computed here from first principles (scale = sensitivity / epsilon), not by the module.
"""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import pytest
import yaml

from citybrain.dbt_paths import read_manifest
from citybrain.ingest.warehouse import run_sql, sql_text
from citybrain.privacy import dp
from citybrain.publication import live_version, publish, tier_path
from citybrain.resource_catalog.build import _differential_privacy
from citybrain.resource_catalog.history import load_history

K = 10
CLASSIFICATION = {"ind_small": "open", "fct_wide": "open", "dim_other": "open"}
MONTHS = ("2026-10-01", "2026-11-01")
DISTRICTS = 60


def _privacy_file(path: Path, enabled: bool, tables: dict) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "small_cell_k": K,
                "min_equivalence_class": 5,
                "differential_privacy": {"enabled": enabled, "ledger_dir": "privacy/dp", "tables": tables},
            }
        ),
        encoding="utf-8",
    )
    return path


SMALL = {
    "ind_small": {
        "period_column": "month",
        "key": ["district_code"],
        "epsilon": 1.0,
        "budget": 2.0,
        "mechanism": "laplace",
        "columns": {"people": {"sensitivity": 1, "suppressed_flag": "people_suppressed"}},
        "derived": {"seats_per_person": {"numerator": "seats", "denominator": "people"}},
    }
}


@pytest.fixture
def lake(tmp_path, monkeypatch):
    monkeypatch.setenv("CITYBRAIN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CITYBRAIN_AUDIT_DIR", str(tmp_path / "audit"))
    return tmp_path


def _true_people(district: int, month: int, bump: int = 0) -> int | None:
    """People per district: mostly large, every 7th suppressed upstream (None), every 11th zero."""
    if district % 7 == 3:
        return None
    if district % 11 == 5:
        return 0
    return 200 + 13 * district + 5 * month + bump


def _build(path: Path, bump: dict[tuple[int, int], int] | None = None) -> None:
    bump = bump or {}
    with duckdb.connect(str(path)) as con:
        run_sql(con, sql_text("schema.sql"))
        con.execute("CREATE SCHEMA IF NOT EXISTS pool")
        rows = []
        for m, month in enumerate(MONTHS):
            for d in range(DISTRICTS):
                people = _true_people(d, m, bump.get((d, m), 0))
                seats = 500 + d
                ratio = None if not people else seats / people
                rows.append((f"D{d:03d}", month, people, people is None, seats, ratio, f"label {d}"))
        con.execute(
            "CREATE OR REPLACE TABLE pool.ind_small (district_code VARCHAR, month DATE, people BIGINT, "
            "people_suppressed BOOLEAN, seats BIGINT, seats_per_person DOUBLE, label VARCHAR)"
        )
        con.executemany("INSERT INTO pool.ind_small VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        con.execute("CREATE OR REPLACE TABLE pool.dim_other AS SELECT range AS n FROM range(5)")


def _rows(path: Path, table: str = "ind_small") -> dict:
    with duckdb.connect(str(path), read_only=True) as con:
        return {
            (r[0], str(r[1])): r[2:]
            for r in con.execute(
                f"SELECT district_code, month, people, people_suppressed, seats, seats_per_person, label "
                f"FROM pool.{table} ORDER BY 1, 2"
            ).fetchall()
        }


def _budget(path: Path) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(
            "SELECT table_name, period, fresh, epsilon, spent_total, budget FROM meta.privacy_budget ORDER BY 2"
        ).fetchall()


def test_off_publishes_the_true_values_and_no_budget(lake, monkeypatch):
    warehouse, pool = lake / "warehouse.duckdb", lake / "pool"
    _build(warehouse)
    for enabled, tables in ((False, SMALL), (False, {"ind_small": {"broken": True}})):
        monkeypatch.setenv("CITYBRAIN_PRIVACY", str(_privacy_file(lake / "privacy.yaml", enabled, tables)))
        publish(warehouse, "run-off", [], CLASSIFICATION, directory=pool)
        assert _rows(tier_path("open", pool)) == _rows(warehouse)
        with duckdb.connect(str(tier_path("open", pool)), read_only=True) as con:
            meta = {
                t
                for (t,) in con.execute(
                    "SELECT table_name FROM duckdb_tables() WHERE schema_name='meta'"
                ).fetchall()
            }
        assert "privacy_budget" not in meta
    assert not (lake / "home" / "privacy").exists(), "off: no ledger either"


def test_noise_keeps_suppression_and_the_budget_is_accounted(lake, monkeypatch):
    warehouse, pool = lake / "warehouse.duckdb", lake / "pool"
    monkeypatch.setenv("CITYBRAIN_PRIVACY", str(_privacy_file(lake / "privacy.yaml", True, SMALL)))
    _build(warehouse)
    true = _rows(warehouse)
    publish(warehouse, "run-1", [], CLASSIFICATION, directory=pool)
    first = _rows(tier_path("open", pool))
    assert first.keys() == true.keys()
    changed = 0
    for key, (people, flag, seats, ratio, label) in first.items():
        t_people, t_flag, t_seats, _, t_label = true[key]
        assert (seats, label) == (t_seats, t_label), "columns without noise are untouched"
        if t_people is None:
            assert people is None and flag, "a cell suppressed upstream stays suppressed"
            continue
        if people is None:
            assert flag, "a noisy count from 1 to k-1 is suppressed, with its flag"
            assert ratio is None
            continue
        assert isinstance(people, int) and people >= 0 and not (0 < people < K)
        assert not flag
        changed += people != t_people
        assert ratio == (None if people == 0 else pytest.approx(seats / people)), "ratio from the noisy count"
    # Discrete Laplace with scale b = sensitivity / epsilon = 1 leaves a count unchanged with probability
    # P(0) = (1 - q) / (1 + q), q = exp(-1/b) (about 0.46): expect about 54 % changed. Draws that were
    # suppressed are skipped above, so the bound is five binomial standard deviations below the mean
    # over the counts that came out (fails by chance about once in a few million runs).
    q = math.exp(-1.0)
    p_changed = 1 - (1 - q) / (1 + q)
    released = sum(1 for key, v in first.items() if true[key][0] and v[0] is not None)
    floor = released * p_changed - 5 * math.sqrt(released * p_changed * (1 - p_changed))
    assert released > 40 and changed >= floor, ("released counts carry noise", changed, released, floor)
    budget = _budget(tier_path("open", pool))
    assert [(t, p, f) for t, p, f, *_ in budget] == [("ind_small", m, True) for m in MONTHS]
    assert all(e == pytest.approx(1.0) and s == pytest.approx(1.0) and b == 2.0 for *_, e, s, b in budget)
    ledger = dp.read_ledger(lake / "home" / "privacy" / "dp")
    assert len(ledger) == 2 and {e["period"] for e in ledger} == set(MONTHS)

    # Unchanged data: the stored release is published again, nothing more is spent.
    publish(warehouse, "run-2", [], CLASSIFICATION, directory=pool)
    assert _rows(tier_path("open", pool)) == first
    assert [f for _, _, f, *_ in _budget(tier_path("open", pool))] == [False, False]
    assert len(dp.read_ledger(lake / "home" / "privacy" / "dp")) == 2

    # One district of the second month changes: that month gets fresh noise and spends again.
    _build(warehouse, {(1, 1): 1})
    third = publish(warehouse, "run-3", [], CLASSIFICATION, directory=pool)
    budget = _budget(tier_path("open", pool))
    assert [(p, f, round(s, 6)) for _, p, f, _, s, _ in budget] == [
        (MONTHS[0], False, 1.0),
        (MONTHS[1], True, 2.0),
    ]
    again = _rows(tier_path("open", pool))
    assert all(again[k] == first[k] for k in first if k[1] == MONTHS[0])
    history = load_history(pool / "publications.jsonl")  # what the resource catalog shows
    assert [(p["period"], p["spent_total"]) for p in history.privacy["ind_small"]] == [
        (MONTHS[0], 1.0),
        (MONTHS[1], 2.0),
    ]
    assert "ε=2" in _differential_privacy(history.privacy["ind_small"])

    # A further change would exceed the month's budget of 2: refused, the previous version stays live.
    _build(warehouse, {(1, 1): 2})
    with pytest.raises(dp.BudgetExceeded, match=r"ind_small 2026-11-01: spent 2 \+ 1 > budget 2"):
        publish(warehouse, "run-4", [], CLASSIFICATION, directory=pool)
    assert live_version(pool, "open") == third.version
    assert len(dp.read_ledger(lake / "home" / "privacy" / "dp")) == 3, "a refusal draws (and spends) nothing"


def test_a_configuration_that_does_not_fit_the_table_stops_the_publication(lake, monkeypatch):
    warehouse, pool = lake / "warehouse.duckdb", lake / "pool"
    _build(warehouse)
    tables = {"ind_small": {**SMALL["ind_small"], "columns": {"persons": {"sensitivity": 1}}}}
    monkeypatch.setenv("CITYBRAIN_PRIVACY", str(_privacy_file(lake / "privacy.yaml", True, tables)))
    with pytest.raises(dp.DifferentialPrivacyError, match="names columns the table does not have: persons"):
        publish(warehouse, "run-1", [], CLASSIFICATION, directory=pool)
    assert live_version(pool, "open") is None
    tables = {"ind_small": {**SMALL["ind_small"], "key": ["people_suppressed"]}}  # not a key
    monkeypatch.setenv("CITYBRAIN_PRIVACY", str(_privacy_file(lake / "privacy.yaml", True, tables)))
    with pytest.raises(
        dp.DifferentialPrivacyError, match=r"0 rows without month and 1\d\d rows repeating a key"
    ):
        publish(warehouse, "run-1", [], CLASSIFICATION, directory=pool)
    assert live_version(pool, "open") is None


def test_noise_variance_matches_the_laplace_scale(lake, monkeypatch):
    """20,000 cells of 1,000 (far from 0, so clamping never acts), two columns sharing epsilon 1, each
    with sensitivity 2: each column gets epsilon 0.5, so the Laplace scale is b = 2 / 0.5 = 4.
    Integer column, discrete Laplace: P(x) ∝ exp(-|x|/b), variance 2q/(1-q)^2 with q = exp(-1/b).
    Floating column, continuous Laplace then rounding: variance 2b^2 + 1/12 (rounding error, nearly
    uniform and independent at this scale). Tolerance: the sample variance of n draws has standard error
    about sigma^2 * sqrt((kurtosis - 1) / n), kurtosis 6 for Laplace; we allow 5 standard errors."""
    warehouse, pool = lake / "warehouse.duckdb", lake / "pool"
    n, value, b = 20_000, 1000, 4.0
    with duckdb.connect(str(warehouse)) as con:
        run_sql(con, sql_text("schema.sql"))
        con.execute("CREATE SCHEMA pool")
        con.execute(
            f"CREATE TABLE pool.fct_wide AS SELECT DATE '2026-11-01' AS stat_date, range AS cell, "
            f"{value}::BIGINT AS c_int, {value}::DOUBLE AS c_float FROM range({n})"
        )
    tables = {
        "fct_wide": {
            "period_column": "stat_date",
            "key": ["cell"],
            "epsilon": 1.0,
            "budget": 1.0,
            "columns": {"c_int": {"sensitivity": 2}, "c_float": {"sensitivity": 2}},
        }
    }
    monkeypatch.setenv("CITYBRAIN_PRIVACY", str(_privacy_file(lake / "privacy.yaml", True, tables)))
    publish(warehouse, "run-1", [], CLASSIFICATION, directory=pool)
    with duckdb.connect(str(tier_path("open", pool)), read_only=True) as con:
        ints, floats = zip(*con.execute("SELECT c_int, c_float FROM pool.fct_wide").fetchall(), strict=True)
        spent = con.execute("SELECT epsilon FROM meta.privacy_budget").fetchone()[0]
    q = math.exp(-1 / b)
    expected = {"int": 2 * q / (1 - q) ** 2, "float": 2 * b**2 + 1 / 12}
    for name, values in (("int", ints), ("float", floats)):
        assert all(float(v).is_integer() for v in values)
        errors = [v - value for v in values]
        mean = sum(errors) / n
        variance = sum((e - mean) ** 2 for e in errors) / (n - 1)
        sigma2 = expected[name]
        assert abs(mean) < 5 * math.sqrt(sigma2 / n), (name, mean)
        assert abs(variance - sigma2) < 5 * sigma2 * math.sqrt(5 / n), (name, variance, sigma2)
    assert spent == pytest.approx(1.0, rel=1e-6)


def test_the_shipped_configuration_fits_the_open_models(monkeypatch):
    """catalog/privacy.yaml is off by default, parses, and names only columns the dbt models declare
    (read from the compiled manifest), in tables classified open; a divide_by_var is the dbt var's value."""
    from citybrain.settings import REPO_ROOT

    monkeypatch.delenv("CITYBRAIN_PRIVACY", raising=False)
    settings = dp.dp_settings()
    assert not settings.enabled and settings.tables
    manifest = read_manifest()  # read again if another worker's dbt is rewriting it
    models = {
        n["name"]: n
        for n in manifest["nodes"].values()
        if n["resource_type"] == "model" and n["schema"] == "pool"
    }
    for name, policy in settings.tables.items():
        assert models[name]["config"]["meta"]["classification"] == "open"
        wanted = {policy.period_column, *policy.key, *(c.name for c in policy.columns)}
        wanted |= {c.suppressed_flag for c in policy.columns if c.suppressed_flag}
        wanted |= {x for d in policy.derived for x in (d.name, d.numerator, d.denominator) if x}
        assert wanted <= set(models[name]["columns"]), (name, wanted - set(models[name]["columns"]))
    project = yaml.safe_load((REPO_ROOT / "dbt_project" / "dbt_project.yml").read_text(encoding="utf-8"))
    (est,) = [d for d in settings.tables["fct_presence_hourly"].derived if d.name == "est_population"]
    assert est.multiplier == pytest.approx(1 / project["vars"]["presence_coverage"])
