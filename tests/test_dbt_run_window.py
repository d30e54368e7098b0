"""The run's days reach dbt by environment, read only when dbt executes (macros/partition_window.sql,
run_window), so a new day every night keeps dbt's partial parsing; the daily facts' tests check only
those days (macros/test_window.sql)."""

import duckdb

from tests.dbt_project_cli import run_dbt

FACT = "fct_presence_hourly"


def test_a_new_day_keeps_partial_parsing_and_windows_the_daily_tests(tmp_path, monkeypatch):
    # dbt says whether it parsed again at debug; the dbt steps set its file log to info
    # (assets/dbt/process_env.py), and a step run earlier in this process leaves that in the environment.
    monkeypatch.setenv("DBT_LOG_LEVEL_FILE", "debug")
    warehouse = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(warehouse)).close()
    target = tmp_path / "target"
    first = run_dbt(["parse"], target, warehouse, "2026-01-01")
    assert first.returncode == 0, first.stdout[-2000:]
    first_log = len((target / "dbt.log").read_text(encoding="utf-8"))

    second = run_dbt(["compile", "--select", f"test_type:generic,{FACT}"], target, warehouse, "2026-01-02")
    assert second.returncode == 0, second.stdout[-2000:]
    log = (target / "dbt.log").read_text(encoding="utf-8")[first_log:]  # the second invocation's
    # Not even the files that use the window are parsed again (as with --vars, the whole project was).
    assert "Nothing changed, skipping partial parsing" in log, [
        line for line in log.splitlines() if "arsing" in line
    ]

    compiled = list((target / "compiled").rglob(f"*{FACT}*.sql"))
    tests = [p.read_text(encoding="utf-8") for p in compiled if p.parent.name.endswith(".yml")]
    assert tests, compiled
    window = "stat_date between cast('2026-01-02' as date) and cast('2026-01-02' as date)"
    assert all(window in sql for sql in tests)
