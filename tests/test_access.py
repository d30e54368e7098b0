"""Analyst access: grants per tier, the SQL guard (and the engine behind it), every access path audited.

One small hand-made lake, published by the real publication code, serves the whole module (cheap)."""

from __future__ import annotations

import csv

import pandas as pd
import pyarrow.parquet as pq
import pytest
import sqlalchemy

import citybrain.access as access
from citybrain.access import audit
from citybrain.access.grants import load_grants
from orchestration.cli import main as citybrain
from tests.access_lake import access_lake


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    with access_lake(tmp_path_factory.mktemp("access")) as home:
        yield home


def last_record():
    return audit.read_records()[-1]


def test_a_granted_user_reads_every_granted_tier_under_pool_names(lake):
    with access.connect(user="demo_researcher") as session:
        assert session.tiers == ["open", "conditional"]
        rows = session.query(
            "SELECT a.area_name, count(*) AS visits FROM pool.dim_area AS a JOIN fct_visit USING (area_code) "
            "GROUP BY 1 ORDER BY 1"
        ).to_pylist()
        assert rows == [{"area_name": "滨江区", "visits": 10}, {"area_name": "西湖区", "visits": 10}]
        versions = session.query("SELECT DISTINCT version FROM meta.publication").num_rows
        assert versions == 1, "all attached tiers are the same publication"
    record = last_record()
    assert (record["user"], record["via"], record["action"], record["outcome"]) == (
        "demo_researcher", "python", "query", "ok",
    )  # fmt: skip
    assert record["tables"] == ["meta.publication"]


def test_an_ungranted_tier_fails_with_user_tier_and_grants_file(lake):
    with pytest.raises(access.AccessDenied) as denied:
        access.connect(user="demo_analyst", tiers=["conditional"])
    message = str(denied.value)
    assert "demo_analyst" in message and "'conditional'" in message and "grants.yaml" in message
    assert (last_record()["action"], last_record()["outcome"]) == ("connect", "denied")
    # the open tier only: its session does not know conditional tables
    with (
        access.connect(user="demo_analyst") as session,
        pytest.raises(access.QueryRejected, match="not granted table pool.fct_visit"),
    ):
        session.query("SELECT * FROM pool.fct_visit")
    with pytest.raises(access.AccessDenied, match="'nobody' is granted no tier .*not listed"):
        access.connect(user="nobody")


def test_restricted_data_is_never_published_nor_grantable(lake):
    with pytest.raises(access.AccessDenied, match="restricted data never leaves the warehouse"):
        access.connect(user="demo_researcher", tiers=["restricted"])
    with access.connect(user="demo_researcher") as session:
        assert "pool.dim_person_raw" not in session.readable
        catalog = session.query("SELECT table_name FROM information_schema.tables").column(0).to_pylist()
        assert "dim_person_raw" not in catalog


def test_user_comes_from_environment(lake, monkeypatch):
    monkeypatch.setenv("CITYBRAIN_USER", "demo_analyst")
    with access.connect() as session:
        assert session.user == "demo_analyst" and session.tiers == ["open"]


HOSTILE = [
    "DROP TABLE pool.dim_area",
    "INSERT INTO pool.dim_area VALUES ('1', 'x', 1)",
    "UPDATE pool.dim_area SET residents = 0",
    "DELETE FROM pool.dim_area",
    "CREATE TABLE t AS SELECT * FROM pool.dim_area",
    "ALTER TABLE pool.dim_area ADD COLUMN x INT",
    "PRAGMA database_list",
    "SET enable_external_access = true",
    "INSTALL httpfs",
    "LOAD httpfs",
    "ATTACH '/tmp/other.duckdb' AS other",
    "DETACH citybrain_open",
    "COPY pool.dim_area TO '/tmp/leak.csv'",
    "EXPORT DATABASE '/tmp/leak'",
    "CALL pragma_version()",
    "SELECT 1; DROP TABLE pool.dim_area",
    "SELECT 1 -- harmless?\n; DELETE FROM pool.dim_area",
    "SELECT 1 /* ; */ ; SELECT 2",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_csv_auto('/etc/passwd')",
    "SELECT * FROM read_parquet('x.parquet')",
    "SELECT * FROM read_json_auto('x.json')",
    "SELECT content FROM read_text('/etc/hostname')",
    "SELECT * FROM read_blob('/etc/hostname')",
    "SELECT * FROM glob('/etc/*')",
    "SELECT * FROM '/etc/passwd.csv'",
    "SELECT * FROM 'data.parquet'",
    "SELECT * FROM sniff_csv('/etc/passwd')",
    "SELECT * FROM parquet_metadata('x.parquet')",
    "SELECT getenv('HOME')",
    "SELECT current_setting('enable_external_access')",
    "SELECT * FROM duckdb_settings()",
    "SELECT * FROM duckdb_extensions()",
    "SELECT * FROM query('DROP TABLE pool.dim_area')",
    "SELECT * FROM citybrain_conditional.pool.fct_visit",
    "SELECT * FROM pool.dim_person_raw",
    "SELECT * FROM pool.dim_area WHERE area_code IN (SELECT area_code FROM read_csv('/etc/passwd'))",
    "WITH x AS (SELECT * FROM read_parquet('x.parquet')) SELECT * FROM x",
    "",
]


@pytest.mark.parametrize("sql", HOSTILE)
def test_hostile_sql_is_rejected_and_the_rejection_audited(lake, sql):
    with access.connect(user="demo_analyst") as session, pytest.raises(access.QueryRejected):
        session.query(sql)
    record = last_record()
    assert (record["action"], record["outcome"], record["sql"]) == ("query", "rejected", sql)
    assert record["detail"]


def test_the_engine_refuses_what_the_guard_would_miss(lake, tmp_path):
    """Defence in depth: on the session's raw connection (no guard), files, settings and writes all fail."""
    import duckdb

    with access.connect(user="demo_researcher") as session:
        con = session.con
        for sql in (
            "SELECT * FROM read_csv('/etc/passwd')",
            f"COPY (SELECT 1) TO '{tmp_path}/out.csv'",
            f"ATTACH '{tmp_path}/x.duckdb' AS x",
            "SET enable_external_access = true",
            "SET lock_configuration = false",
            "INSERT INTO citybrain_open.pool.dim_area VALUES ('1', 'x', 1)",
            "LOAD httpfs",
        ):
            with pytest.raises(duckdb.Error):
                con.execute(sql)
        assert con.execute("SELECT current_setting('enable_external_access')").fetchone() == (False,)
    assert not (tmp_path / "out.csv").exists()


def test_cli_query_prints_and_exports_csv_and_parquet_all_audited(lake, tmp_path, capsys):
    sql = "SELECT area_code, area_name, residents FROM pool.dim_area ORDER BY area_code"
    assert citybrain(["query", sql, "--user", "demo_analyst"]) == 0
    assert "西湖区" in capsys.readouterr().out
    assert (last_record()["via"], last_record()["action"], last_record()["rows"]) == ("cli", "query", 2)

    out_csv, out_parquet = tmp_path / "r.csv", tmp_path / "r.parquet"
    assert citybrain(["query", sql, "--user", "demo_analyst", "--out", str(out_csv)]) == 0
    assert list(csv.reader(out_csv.open(encoding="utf-8")))[1] == ["330106", "西湖区", "1200"]
    export = last_record()
    assert (export["action"], export["target"], export["rows"], export["tiers"]) == (
        "export", str(out_csv), 2, ["open"],
    )  # fmt: skip
    assert citybrain(["query", sql, "--user", "demo_analyst", "--out", str(out_parquet)]) == 0
    assert pq.read_table(out_parquet).num_rows == 2
    assert (last_record()["action"], last_record()["target"]) == ("export", str(out_parquet))

    assert citybrain(["query", "SELECT * FROM pool.fct_visit", "--user", "demo_analyst"]) == 2
    assert "QueryRejected" in capsys.readouterr().err
    assert citybrain(["query", sql, "--user", "demo_analyst", "--tier", "conditional"]) == 2
    assert "not granted tier 'conditional'" in capsys.readouterr().err


def test_sqlalchemy_and_pandas_paths_enforce_grants_and_audit(lake):
    engine = access.engine(user="demo_researcher")
    frame = pd.read_sql_query("SELECT count(*) AS n FROM pool.fct_visit", engine)
    assert frame["n"].tolist() == [20]
    record = last_record()
    assert (record["via"], record["user"], record["tables"], record["tiers"]) == (
        "sqlalchemy", "demo_researcher", ["pool.fct_visit"], ["conditional"],
    )  # fmt: skip
    same = sqlalchemy.create_engine("citybrain:///?user=demo_analyst")
    with same.connect() as con:
        assert con.execute(sqlalchemy.text("SELECT count(*) FROM pool.dim_area")).scalar() == 2
        with pytest.raises(access.QueryRejected):
            con.execute(sqlalchemy.text("SELECT * FROM pool.fct_visit"))
        with pytest.raises(access.QueryRejected):
            con.exec_driver_sql("DELETE FROM pool.dim_area")
    assert last_record()["outcome"] == "rejected" and last_record()["via"] == "sqlalchemy"
    with pytest.raises(access.AccessDenied):
        sqlalchemy.create_engine("citybrain:///?user=demo_analyst&tiers=conditional").connect()

    frame = access.read_sql("SELECT * FROM pool.dim_area", user="demo_analyst")
    assert len(frame) == 2
    assert (last_record()["via"], last_record()["rows"]) == ("pandas", 2)


def test_grants_file_mistakes_are_reported_clearly(tmp_path):
    bad = tmp_path / "grants.yaml"
    bad.write_text(
        "roles:\n  reader: {tiers: [open, secret]}\n  everything: {tiers: [restricted]}\n"
        "users:\n  alice: {roles: [readers]}\n",
        encoding="utf-8",
    )
    with pytest.raises(access.GrantsError) as error:
        load_grants(bad)
    message = str(error.value)
    assert str(bad) in message
    assert "roles.reader.tiers.1" in message and "restricted' cannot be granted" in message
    bad.write_text(
        "roles:\n  reader: {tiers: [open]}\nusers:\n  alice: {roles: [readers]}\n", encoding="utf-8"
    )
    with pytest.raises(access.GrantsError, match="user 'alice' has unknown role"):
        load_grants(bad)
    shipped = load_grants()
    assert shipped.tiers_for("demo_researcher") == ["open", "conditional"] and shipped.is_auditor(
        "demo_auditor"
    )
