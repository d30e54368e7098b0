"""A small published lake for the access and audit tests: a hand-made warehouse with one pool table per
tier, published through the real ``publish``. Who reads it is a sharing token or the local operator."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from citybrain.ingest.warehouse import run_sql, sql_text
from citybrain.publication import publish

CLASSIFICATION = {"dim_area": "open", "fct_visit": "conditional", "dim_person_raw": "restricted"}


@contextlib.contextmanager
def access_lake(home: Path) -> Iterator[Path]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CITYBRAIN_HOME", str(home))
        for var in (
            "CITYBRAIN_POOL_DIR",
            "CITYBRAIN_AUDIT_DIR",
            "CITYBRAIN_SHARING_DB_URL",
            "CITYBRAIN_SHARING_TOKEN",
        ):
            mp.delenv(var, raising=False)
        warehouse = home / "warehouse.duckdb"
        with duckdb.connect(str(warehouse)) as con:
            run_sql(con, sql_text("schema.sql"))
            con.execute("CREATE SCHEMA IF NOT EXISTS pool")
            con.execute(
                "CREATE TABLE pool.dim_area AS SELECT * FROM (VALUES ('330106', '西湖区', 1200), "
                "('330108', '滨江区', 800)) AS t(area_code, area_name, residents)"
            )
            con.execute(
                "CREATE TABLE pool.fct_visit AS SELECT 'p' || (range % 7) AS person_pseudonym, "
                "CASE WHEN range % 2 = 0 THEN '330106' ELSE '330108' END AS area_code, range AS visit_no "
                "FROM range(20)"
            )
            con.execute(
                "CREATE TABLE pool.dim_person_raw AS SELECT '11010519491231002X' AS id_number, '张三丰' AS name"
            )
        publish(warehouse, "run-access", ["2026-10-05"], CLASSIFICATION)
        yield home
