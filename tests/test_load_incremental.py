"""Models built night by night over four nights of a database feed read by its cursor
(dbt_project/macros/portable.sql): stg_si_insured built load by load (``load_incremental_config``) and
int_people__si_insured_current, the latest version per enrolment (``latest_version_config``).

Each night normalises only the loads it has not built and ranks again only the enrolments it delivered a
version of (rows marked in the built tables keep their mark, so the test fails if a night rebuilds
history); a quiet night changes nothing; a load that left the raw table (superseded) leaves both models,
the enrolment falling back to its earlier version or leaving when it had none; after the last night both
hold exactly what a full rebuild gives. Expected identifiers, validity and pseudonyms come from
python-stdnum, HMAC-SHA256 and the rows the test delivers, never from the pipeline's functions.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa
from stdnum.cn import ric

from citybrain.ingest.pipeline import ingest_sql
from citybrain.settings import REPO_ROOT

DBT = str(Path(sys.executable).with_name("dbt"))
SALT = "test-salt"
MODELS = ("stg_si_insured", "int_people__si_insured_current")


def _key(id_number: str) -> str:
    return hmac.new(SALT.encode(), id_number.encode(), hashlib.sha256).hexdigest()


def _valid_id(serial: int) -> str:
    body = f"33010219850101{serial:03d}"
    return body + ric.calc_check_digit(body + "0")  # stdnum wants a placeholder in the last place


def _invalid_id(serial: int) -> str:
    valid = _valid_id(serial)
    wrong = "0" if valid[-1] != "0" else "1"
    return valid[:-1] + wrong


def _version(insured_id: str, id_number: str, status: str, updated_at: str) -> dict:
    return {
        "insured_id": insured_id,
        "id_number": id_number,
        "name": "张三",
        "unit_id": "U1",
        "insurance_type": "110",
        "status": status,
        "start_month": "202001",
        "monthly_base": "5000.00",
        "updated_at": datetime.fromisoformat(updated_at),
    }


@pytest.fixture
def insurance_db(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'social_insurance.sqlite'}")
    metadata = sa.MetaData()
    columns = ["insured_id", "id_number", "name", "unit_id", "insurance_type", "status", "start_month"]
    table = sa.Table(
        "si_insured",
        metadata,
        *[sa.Column(name, sa.String(64)) for name in columns],
        sa.Column("monthly_base", sa.String(16)),
        sa.Column("updated_at", sa.DateTime, index=True),
    )
    metadata.create_all(engine)
    yield engine, table
    engine.dispose()


def _dbt(lake: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [DBT, *args, "--profiles-dir", ".", "--target-path", str(lake / "target"),
         "--log-path", str(lake / "target")],
        cwd=REPO_ROOT / "dbt_project",
        env={**os.environ, "CITYBRAIN_WAREHOUSE": str(lake / "warehouse.duckdb"), "CITYBRAIN_HOME": str(lake),
             "CITYBRAIN_PSEUDONYM_SALT": SALT},
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def _build(lake: Path, *extra: str) -> None:
    proc = _dbt(
        lake,
        "build",
        "--select",
        *MODELS,
        "--indirect-selection",
        "cautious",
        "--exclude-resource-type",
        "unit_test",
        *extra,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr


def _relation(con, model: str = "stg_si_insured") -> str:
    schema = con.execute(
        "SELECT table_schema FROM information_schema.tables WHERE table_name = ?", [model]
    ).fetchone()[0]
    return f'"{schema}".{model}'


def _built(lake: Path) -> set[tuple]:
    with duckdb.connect(str(lake / "warehouse.duckdb"), read_only=True) as con:
        return set(
            con.execute(
                f"SELECT insured_id, id_number, id_number_problem IS NULL, status, name, _batch_id "
                f"FROM {_relation(con)}"
            ).fetchall()
        )


def _current(lake: Path) -> set[tuple]:
    with duckdb.connect(str(lake / "warehouse.duckdb"), read_only=True) as con:
        relation = _relation(con, "int_people__si_insured_current")
        return set(
            con.execute(
                f"SELECT insured_id, resident_key, status, unit_id, _batch_id FROM {relation}"
            ).fetchall()
        )


def _mark_night_one(lake: Path) -> None:
    """Rows a later night must not touch: a rebuild would give their name and employer back."""
    with duckdb.connect(str(lake / "warehouse.duckdb")) as con:
        con.execute(f"UPDATE {_relation(con)} SET name = 'marked' WHERE _batch_id = 'night-1'")
        relation = _relation(con, "int_people__si_insured_current")
        con.execute(f"UPDATE {relation} SET unit_id = 'marked' WHERE insured_id = 'E2'")


def _same_as_full_rebuild(lake: Path, incremental: set[tuple], current: set[tuple]) -> None:
    """The incremental results, marks aside, equal a full rebuild from the raw table."""
    _build(lake, "--full-refresh")
    assert {row[:4] + ("张三",) + row[5:] for row in incremental} == _built(lake)
    assert {row[:3] + ("U1",) + row[4:] for row in current} == _current(lake)


def test_each_night_normalises_only_its_new_loads(lake, catalog, insurance_db):
    engine, table = insurance_db
    feed = catalog.feed("si_insured")
    url = str(engine.url)
    warehouse = lake / "warehouse.duckdb"

    # Night 1: two enrolments, one with an ID whose check digit is wrong.
    with engine.begin() as con:
        con.execute(
            table.insert(),
            [
                _version("E1", _valid_id(1), "1", "2026-11-20 08:00:00"),
                _version("E2", _invalid_id(2), "1", "2026-11-20 09:00:00"),
            ],
        )
    assert ingest_sql(feed, url, warehouse, "night-1").rows_loaded == 2
    _build(lake)
    assert _built(lake) == {
        ("E1", _valid_id(1), True, "1", "张三", "night-1"),
        ("E2", None, False, "1", "张三", "night-1"),
    }
    assert _current(lake) == {
        ("E1", _key(_valid_id(1)), "1", "U1", "night-1"),
        ("E2", None, "1", "U1", "night-1"),
    }
    _mark_night_one(lake)

    # Night 2: E1 suspended (a new version), E3 new.
    with engine.begin() as con:
        con.execute(
            table.update()
            .where(table.c.insured_id == "E1")
            .values(status="2", updated_at=datetime(2026, 11, 21, 8))
        )
        con.execute(table.insert(), [_version("E3", _valid_id(3), "1", "2026-11-21 09:00:00")])
    assert ingest_sql(feed, url, warehouse, "night-2").rows_loaded == 2
    _build(lake)
    night_2 = _built(lake)
    assert night_2 == {
        ("E1", _valid_id(1), True, "1", "marked", "night-1"),  # not normalised again
        ("E2", None, False, "1", "marked", "night-1"),
        ("E1", _valid_id(1), True, "2", "张三", "night-2"),
        ("E3", _valid_id(3), True, "1", "张三", "night-2"),
    }

    current_2 = {
        ("E1", _key(_valid_id(1)), "2", "U1", "night-2"),
        ("E2", None, "1", "marked", "night-1"),  # no new version: not ranked again
        ("E3", _key(_valid_id(3)), "1", "U1", "night-2"),
    }
    assert _current(lake) == current_2

    # Night 3: a quiet night, nothing delivered: nothing changes.
    assert ingest_sql(feed, url, warehouse, "night-3").rows_loaded == 0
    _build(lake)
    assert _built(lake) == night_2
    assert _current(lake) == current_2

    # Night 4: night 2's load left the raw table (superseded: its rows went to history) and a correction
    # of E2 with a valid ID arrives.
    with duckdb.connect(str(warehouse)) as con:
        con.execute("DELETE FROM raw.si_insured WHERE _batch_id = 'night-2'")
    with engine.begin() as con:
        con.execute(
            table.update().where(table.c.insured_id == "E2")
            .values(id_number=_valid_id(2), updated_at=datetime(2026, 11, 23, 8))
        )  # fmt: skip
    assert ingest_sql(feed, url, warehouse, "night-4").rows_loaded == 1
    _build(lake)
    night_4 = _built(lake)
    assert night_4 == {
        ("E1", _valid_id(1), True, "1", "marked", "night-1"),
        ("E2", None, False, "1", "marked", "night-1"),
        ("E2", _valid_id(2), True, "1", "张三", "night-4"),
    }
    current_4 = {
        ("E1", _key(_valid_id(1)), "1", "U1", "night-1"),  # its night-2 version left: back to night 1's
        ("E2", _key(_valid_id(2)), "1", "U1", "night-4"),  # the correction, ranked again (mark gone)
    }  # E3 had only its night-2 version: it left with it
    assert _current(lake) == current_4
    _same_as_full_rebuild(lake, night_4, current_4)
