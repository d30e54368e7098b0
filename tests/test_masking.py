"""Desensitisation (dbt_project/macros/masking.sql, citybrain/transform): the functions on their own, the
dbt unit tests that run each macro through the pool model using it, and the salt that must not default."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from citybrain.settings import REPO_ROOT
from citybrain.transform import udfs


@pytest.fixture()
def con(monkeypatch):
    monkeypatch.setenv("CITYBRAIN_PSEUDONYM_SALT", "test-salt")
    connection = duckdb.connect()
    udfs.register(connection)
    yield connection
    connection.close()


def one(con, sql: str):
    return con.sql(sql).fetchone()[0]


def test_display_masks(con):
    assert one(con, "select cb_mask_id('11010519491231002X')") == "110105********002X"
    assert one(con, "select cb_mask_phone('13812341234')") == "138****1234"
    assert one(con, "select cb_mask_name('张三')") == "张*"
    assert one(con, "select cb_mask_name('张三丰')") == "张**"
    assert one(con, "select cb_mask_name('欧阳娜娜')") == "欧阳**"
    assert one(con, "select cb_mask_name(NULL)") is None


@pytest.mark.parametrize(
    ("text", "scrubbed"),
    [
        ("身份证11010519491231002X。", "身份证110105********002X。"),
        ("身份证11010519491231002x", "身份证110105********002X"),
        ("电话13812341234，", "电话138****1234，"),
        ("电话 138 1234 1234", "电话 138****1234"),
        ("订单110105194912310021", "订单110105194912310021"),  # wrong check digit: an ordinary number
        ("金额13800元，工号213812341234，编号1381234123", "金额13800元，工号213812341234，编号1381234123"),
        ("座机0571-87654321", "座机0571-****4321"),  # landlines too (tests/test_scrub.py: every kind)
    ],
)
def test_scrub_text_masks_only_valid_identifiers(con, text, scrubbed):
    assert one(con, f"select cb_scrub_text('{text}')") == scrubbed


def test_age_generalisation(con):
    assert one(con, "select cb_age_years(date '2000-02-29', date '2001-02-28')") == 0
    assert one(con, "select cb_age_band(date '2000-06-15', date '2025-06-15')") == "25-29"
    assert one(con, "select cb_age_band(date '2000-06-15', date '2025-06-14')") == "20-24"
    assert one(con, "select cb_age_band(date '2030-01-01', date '2025-06-14')") is None


def test_sql_macros_reach_dbt_duckdb_cursors(con):
    """Temporary macros belong to one connection; the dbt plugin registers them on each cursor."""
    from citybrain.transform.dbt_plugin import Plugin

    cursor = con.cursor()
    with pytest.raises(duckdb.CatalogException):
        cursor.sql("select cb_mask_phone('13812341234')")
    Plugin.configure_cursor(None, cursor)
    assert one(cursor, "select cb_mask_phone('13812341234')") == "138****1234"


def test_missing_salt_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv("CITYBRAIN_PSEUDONYM_SALT", raising=False)
    monkeypatch.setenv("CITYBRAIN_HOME", str(tmp_path))  # no secrets/pseudonym_salt there either
    connection = duckdb.connect()
    udfs.register(connection)
    assert one(connection, "select cb_mask_id('11010519491231002X')") == "110105********002X"  # needs no salt
    with pytest.raises(duckdb.Error, match="no pseudonym salt: set CITYBRAIN_PSEUDONYM_SALT"):
        connection.sql("select cb_pseudonym('11010519491231002X')").fetchall()


def test_dbt_unit_tests_of_the_masking_macros(tmp_path):
    """`dbt test --select test_type:unit`: each macro through the pool model that uses it (inputs given as
    SQL, so no lake is needed). The Dagster steps exclude unit tests, so this is where they run."""
    env = {
        **os.environ,
        "CITYBRAIN_WAREHOUSE": str(tmp_path / "warehouse.duckdb"),
        "CITYBRAIN_HOME": str(tmp_path),
        "CITYBRAIN_PSEUDONYM_SALT": "test-salt",
    }
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("dbt")), "test", "--select", "test_type:unit", "--profiles-dir", ".",
         "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "target")],
        cwd=REPO_ROOT / "dbt_project", env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr
    for name in [
        "dim_enterprise_masks_legal_representative",
        "fct_hotline_ticket_scrubs_description",
        "dim_resident_age_band_edges",
        "ind_district_monthly_suppresses_small_cells",
        "as_of_date_follows_a_newer_registry",  # not a mask: ages are generalised at this day
        "as_of_date_is_the_last_partition_when_the_registry_is_older",
        "fct_presence_hourly_hides_small_cells_and_complements",  # _small_cells_unit_tests.yml
        "fct_od_daily_complements_both_margins",
    ]:
        assert name in proc.stdout
    assert "PASS=8" in proc.stdout
