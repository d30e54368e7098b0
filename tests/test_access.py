"""Reading the published pool: a sharing token reads within its grants, the local operator reads every
tier; the SQL guard (and the engine behind it) refuses the rest, and every access path is audited.

One small hand-made lake, published by the real publication code, serves the whole module (cheap); its
sharing database is the lake's default SQLite file, so the CLI finds it as a user's would."""

from __future__ import annotations

import csv

import pandas as pd
import pyarrow.parquet as pq
import pytest
import sqlalchemy

import citybrain.access as access
from citybrain.access import audit
from citybrain.access.identity import os_login
from citybrain.sharing import session as sharing
from citybrain.sharing.store import open_store
from orchestration.cli import main as citybrain
from tests.access_lake import access_lake
from tests.sharing_lake import token_for

OPERATOR = f"operator:{os_login()}"


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    with access_lake(tmp_path_factory.mktemp("access")) as home:
        yield home


@pytest.fixture(scope="module")
def analyst(lake):
    """A consumer granted the open table's code and name columns (not ``residents``), nothing else."""
    store = open_store()
    secret, _ = token_for(
        store, "li_analyst",
        grants=[{"table": "pool.dim_area", "tier": "open", "columns": ["area_code", "area_name"]}],
    )  # fmt: skip
    store.engine.dispose()
    return secret


def last_record():
    return audit.read_records()[-1]


def test_the_local_operator_reads_every_published_tier_under_pool_names(lake):
    with access.connect(local_operator=True) as session:
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
        OPERATOR, "python", "query", "ok",
    )  # fmt: skip
    assert record["tables"] == ["meta.publication"]


def test_without_a_token_or_the_operator_mode_nothing_opens(lake):
    with pytest.raises(access.AccessDenied, match="--token.*--local-operator"):
        access.connect()
    with pytest.raises(access.AccessDenied, match="--token.*--local-operator"):
        sharing.connect()
    assert (last_record()["action"], last_record()["outcome"]) == ("connect", "denied")
    with pytest.raises(access.AccessDenied, match="'demo_researcher'.* no identity"):
        access.connect(user="demo_researcher", local_operator=True)
    with access.connect(local_operator=True, tiers=["open"]) as session:
        assert session.tiers == ["open"]
        with pytest.raises(access.QueryRejected, match="not granted table pool.fct_visit"):
            session.query("SELECT * FROM pool.fct_visit")


def test_restricted_data_is_never_published_nor_readable(lake):
    with pytest.raises(access.AccessDenied, match="restricted data never leaves the warehouse"):
        access.connect(local_operator=True, tiers=["restricted"])
    with access.connect(local_operator=True) as session:
        assert "pool.dim_person_raw" not in session.readable
        catalog = session.query("SELECT table_name FROM information_schema.tables").column(0).to_pylist()
        assert "dim_person_raw" not in catalog


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
def test_hostile_sql_is_rejected_and_the_rejection_audited(lake, analyst, sql):
    for opened, user in (
        (access.connect(local_operator=True), OPERATOR),
        (sharing.connect(analyst), "li_analyst"),
    ):
        with opened as session, pytest.raises(access.QueryRejected):
            session.query(sql)
        record = last_record()
        assert (record["action"], record["outcome"], record["sql"]) == ("query", "rejected", sql)
        assert record["detail"] and record["user"] == user


def test_the_engine_refuses_what_the_guard_would_miss(lake, tmp_path):
    """Defence in depth: on the session's raw connection (no guard), files, settings and writes all fail."""
    import duckdb

    with access.connect(local_operator=True) as session:
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


def test_cli_query_with_a_token_prints_and_exports_the_granted_columns_all_audited(
    lake, analyst, tmp_path, capsys
):
    sql = "SELECT * FROM pool.dim_area ORDER BY area_code"
    assert citybrain(["query", sql, "--token", analyst]) == 0
    out = capsys.readouterr().out
    assert "西湖区" in out and "residents" not in out and "1200" not in out
    record = last_record()
    assert (record["via"], record["action"], record["rows"], record["user"]) == (
        "cli",
        "query",
        2,
        "li_analyst",
    )
    assert record["grant_id"] is not None and record["tables"] == ["pool.dim_area"]

    out_csv, out_parquet = tmp_path / "r.csv", tmp_path / "r.parquet"
    assert citybrain(["query", sql, "--token", analyst, "--out", str(out_csv)]) == 0
    assert list(csv.reader(out_csv.open(encoding="utf-8"))) == [
        ["area_code", "area_name"], ["330106", "西湖区"], ["330108", "滨江区"],
    ]  # fmt: skip
    export = last_record()
    assert (export["action"], export["target"], export["rows"], export["tiers"]) == (
        "export", str(out_csv), 2, ["open"],
    )  # fmt: skip
    assert citybrain(["query", sql, "--token", analyst, "--out", str(out_parquet)]) == 0
    assert pq.read_table(out_parquet).column_names == ["area_code", "area_name"]
    assert (last_record()["action"], last_record()["target"]) == ("export", str(out_parquet))

    for refused in ("SELECT * FROM pool.fct_visit", "SELECT residents FROM pool.dim_area"):
        assert citybrain(["query", refused, "--token", analyst]) == 2
        assert "QueryRejected" in capsys.readouterr().err
        assert (last_record()["outcome"], last_record()["user"]) == ("rejected", "li_analyst")
    assert citybrain(["query", sql, "--token", analyst, "--tier", "conditional"]) == 2
    assert "--tier is for the local operator" in capsys.readouterr().err
    assert citybrain(["query", sql, "--local-operator", "--tier", "open"]) == 0
    assert "1200" in capsys.readouterr().out and last_record()["user"] == OPERATOR


def test_sqlalchemy_and_pandas_paths_enforce_the_grants_and_audit(lake, analyst):
    engine = sharing.engine(analyst)
    frame = pd.read_sql_query("SELECT * FROM pool.dim_area ORDER BY area_code", engine)
    assert frame.columns.tolist() == ["area_code", "area_name"] and len(frame) == 2
    record = last_record()
    assert (record["via"], record["user"], record["tables"], record["tiers"]) == (
        "sqlalchemy", "li_analyst", ["pool.dim_area"], ["open"],
    )  # fmt: skip
    same = sqlalchemy.create_engine(f"citybrain://?token={analyst}")
    with same.connect() as con:
        assert con.execute(sqlalchemy.text("SELECT count(*) FROM pool.dim_area")).scalar() == 2
        for sql in ("SELECT * FROM pool.fct_visit", "SELECT sum(residents) FROM pool.dim_area"):
            with pytest.raises(access.QueryRejected):
                con.execute(sqlalchemy.text(sql))
        with pytest.raises(access.QueryRejected):
            con.exec_driver_sql("DELETE FROM pool.dim_area")
    assert last_record()["outcome"] == "rejected" and last_record()["via"] == "sqlalchemy"

    operator = sqlalchemy.create_engine("citybrain://?local_operator=true")
    with operator.connect() as con:
        assert con.execute(sqlalchemy.text("SELECT sum(residents) FROM pool.dim_area")).scalar() == 2000
        assert con.execute(sqlalchemy.text("SELECT count(*) FROM pool.fct_visit")).scalar() == 20
    assert last_record()["user"] == OPERATOR

    frame = sharing.read_sql("SELECT * FROM pool.dim_area", analyst)
    assert len(frame) == 2
    assert (last_record()["via"], last_record()["rows"]) == ("pandas", 2)
