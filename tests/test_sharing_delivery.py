"""Table delivery (库表, citybrain/sharing/delivery.py) into the local PostgreSQL and MariaDB, over nights.

A tiny warehouse is published through the real ``publish`` (with a small dbt-like manifest, so the version
carries meta.table_days: ``fct_trips`` is a daily fact by ``day``, ``dim_area`` a dimension). A consumer
holds two table grants: some columns of ``fct_trips`` for two of three districts, and ``dim_area`` whole.
Night after night the consumer's tables must hold exactly the granted rows of the live version — computed
here from the rows the test published, not by the delivery code — with new days added, a repeated
publication sending nothing, a corrected day replaced without duplicates, a change outside the grant sending
nothing, a consumer table that cannot take a value rolled back, retried, reported and left unchanged, and
nothing pushed after revocation or expiry.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
import sqlalchemy
from sqlalchemy import text

from citybrain.ingest.warehouse import run_sql, sql_text
from citybrain.publication import publish
from citybrain.sharing.config import Delivery
from citybrain.sharing.delivery import deliver_all, delivery_records
from citybrain.sharing.delivery_targets import TargetError, set_target
from citybrain.sharing.grants import create_grant, revoke_grant
from citybrain.sharing.store import Store, utcnow

PG_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
MARIADB_URL = "mysql+pymysql://root@127.0.0.1:3306/test"
AREAS = ("330106", "330108", "330110")
GRANTED_AREAS = ("330106", "330108")
PEOPLE = 3
FACT_COLUMNS = ["day", "area_code", "trips", "label"]  # not person_pseudonym
PASSWORD_ENV = "CBL_TEST_CONSUMER_PASSWORD"
PASSWORD = "pw-must-never-be-logged-7f3a"
FAST = Delivery(attempts=3, backoff_seconds=0.01, batch_rows=4)  # small batches: several INSERTs per day


def _manifest() -> dict:
    def model(name, daily):
        config = {"materialized": "incremental" if daily else "table", "meta": {"classification": "open", "grade": "general"}}  # fmt: skip
        if daily:
            config["unique_key"] = "day"
        return {
            "unique_id": f"model.t.{name}",
            "resource_type": "model",
            "name": name,
            "schema": "pool",
            "tags": ["daily"] if daily else [],
            "config": config,
            "depends_on": {"nodes": []},
        }

    return {"nodes": {f"model.t.{n}": model(n, n.startswith("fct")) for n in ("fct_trips", "dim_area")}}


def _trip_rows(days: dict[date, dict]) -> list[tuple]:
    """All published rows of fct_trips: per day, per area, per person. ``days`` maps a day to its changes:
    {"bump": {area: n}} adds n to that area's trips, {"label": {(area, person): text}} sets a label."""
    rows = []
    for day, changes in sorted(days.items()):
        for a, area in enumerate(AREAS):
            for person in range(PEOPLE):
                trips = day.day * 10 + a * 3 + person + changes.get("bump", {}).get(area, 0)
                label = changes.get("label", {}).get((area, person), f"t{person}")
                rows.append((day, area, f"p{person}", trips, label))
    return rows


def _publish(home: Path, night: int, days: dict[date, dict], area_names: dict[str, str]) -> str:
    warehouse = home / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        run_sql(con, sql_text("schema.sql"))
        con.execute("CREATE SCHEMA IF NOT EXISTS pool")
        con.execute(
            "CREATE OR REPLACE TABLE pool.fct_trips (day DATE, area_code VARCHAR, person_pseudonym VARCHAR, "
            "trips BIGINT, label VARCHAR)"
        )
        names = ("day", "area_code", "person_pseudonym", "trips", "label")
        con.register(
            "trips", pa.table(dict(zip(names, map(list, zip(*_trip_rows(days), strict=True)), strict=True)))
        )
        con.execute("INSERT INTO pool.fct_trips SELECT * FROM trips")
        con.register(
            "areas", pa.table({"area_code": list(area_names), "area_name": list(area_names.values())})
        )
        con.execute("CREATE OR REPLACE TABLE pool.dim_area AS SELECT * FROM areas")
    days_published = [d.isoformat() for d in sorted(days)]
    classification = {"fct_trips": "open", "dim_area": "open"}
    return publish(warehouse, f"night-{night}", days_published, classification, manifest=_manifest()).version


def _expected_trips(days: dict[date, dict]) -> list[tuple]:
    """What the grant allows: day, area_code, trips, label of the granted areas, from the published rows."""
    return sorted((d, a, t, label) for d, a, _p, t, label in _trip_rows(days) if a in GRANTED_AREAS)


# --- the consumer's database ------------------------------------------------------------------------------
@contextlib.contextmanager
def consumer_database(backend: str) -> Iterator[tuple[sqlalchemy.Engine, str, str]]:
    """A schema (PostgreSQL) or database (MariaDB) of its own for one test, dropped afterwards."""
    url = PG_URL if backend == "postgresql" else MARIADB_URL
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect():
            pass
    except sqlalchemy.exc.OperationalError as error:
        engine.dispose()
        pytest.skip(f"{backend} not reachable: {str(error).splitlines()[0]}")
    schema = f"dlv_{uuid.uuid4().hex[:10]}"
    quote = '"' if backend == "postgresql" else "`"
    kind = "SCHEMA" if backend == "postgresql" else "DATABASE"
    with engine.begin() as con:
        con.execute(text(f"CREATE {kind} {quote}{schema}{quote}"))
    try:
        yield engine, url, schema
    finally:
        with engine.begin() as con:
            con.execute(
                text(f"DROP {kind} {quote}{schema}{quote}" + (" CASCADE" if kind == "SCHEMA" else ""))
            )
        engine.dispose()


def _consumer_rows(engine, schema: str, table: str, columns: list[str]) -> list[tuple]:
    with engine.connect() as con:
        table_ref = sqlalchemy.Table(table, sqlalchemy.MetaData(schema=schema), autoload_with=con)
        rows = con.execute(sqlalchemy.select(*(table_ref.c[c] for c in columns))).all()
    return sorted(tuple(r) for r in rows)


def _audit_records(home: Path) -> list[dict]:
    path = home / "audit" / "audit.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _deliveries_audited(home: Path, grant_id: int) -> list[dict]:
    return [r for r in _audit_records(home) if r["via"] == "delivery" and r["grant_id"] == grant_id]


@pytest.fixture
def lake(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("CITYBRAIN_HOME", str(home))
    monkeypatch.setenv("CITYBRAIN_AUDIT_DIR", str(home / "audit"))
    monkeypatch.delenv("CITYBRAIN_POOL_DIR", raising=False)
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    store = Store(f"sqlite:///{tmp_path / 'sharing.db'}").create_all()
    yield home, store
    store.engine.dispose()


def _grants(store: Store) -> tuple[int, int, datetime]:
    # The consumer never logs in here: a plain account row (create_account's argon2 hash costs a second).
    with store.engine.begin() as con:
        consumer_id = con.execute(
            store.accounts.insert().values(
                name="wang", department="JTJ", role="consumer", password_hash="-", failed_logins=0,
                disabled=False, created_at=utcnow(),
            )
        ).inserted_primary_key[0]  # fmt: skip
    ends = datetime(2027, 6, 30, 23, 59, 59)
    trips = create_grant(
        store, account_id=consumer_id, table="pool.fct_trips", tier="open", columns=FACT_COLUMNS,
        row_filter_column="area_code", row_filter_values=list(GRANTED_AREAS), ends_at=ends, delivery="table",
        by="test",
    )  # fmt: skip
    areas = create_grant(
        store, account_id=consumer_id, table="pool.dim_area", tier="open", columns=["area_code", "area_name"],
        ends_at=ends - timedelta(days=30), delivery="table", by="test",
    )  # fmt: skip
    # An API grant is never pushed anywhere.
    create_grant(store, account_id=consumer_id, table="pool.dim_area", tier="open", columns=["area_code"],
                 ends_at=ends, delivery="api", by="test")  # fmt: skip
    return trips, areas, ends


# --- the nights -------------------------------------------------------------------------------------------
@pytest.mark.server
@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
def test_nights_of_table_delivery(lake, backend):
    home, store = lake
    with consumer_database(backend) as (engine, url, schema):
        trips_grant, areas_grant, _ends = _grants(store)
        set_target(
            store, url=url, department="JTJ", schema=schema, by="test",
            password_env=PASSWORD_ENV if backend == "postgresql" else None,  # trust auth ignores it
        )  # fmt: skip
        trips_table, areas_table = f"fct_trips_g{trips_grant}", f"dim_area_g{areas_grant}"
        d1, d2, d3, d4, d5 = (date(2026, 10, n) for n in range(1, 6))
        names = {"330106": "西湖区", "330108": "滨江区", "330110": "余杭区"}

        def trips_now():
            return _consumer_rows(engine, schema, trips_table, FACT_COLUMNS)

        def areas_now():
            return _consumer_rows(engine, schema, areas_table, ["area_code", "area_name"])

        def run():
            return {r.grant_id: r for r in deliver_all(store, config=FAST, sleep=lambda s: None)}

        # Night 1: two days.
        days = {d1: {}, d2: {}}
        v1 = _publish(home, 1, days, names)
        results = run()
        assert set(results) == {trips_grant, areas_grant}  # the api grant is not delivered
        assert results[trips_grant].status == "delivered" and results[trips_grant].days == [str(d1), str(d2)]
        assert results[trips_grant].version == v1
        assert results[trips_grant].rows == 2 * len(GRANTED_AREAS) * PEOPLE
        assert trips_now() == _expected_trips(days)
        assert areas_now() == sorted(names.items())

        # Night 2: the same data published again: nothing new goes out, nothing is audited as sent.
        audited = len(_deliveries_audited(home, trips_grant))
        _publish(home, 2, days, names)
        results = run()
        assert {r.status for r in results.values()} == {"unchanged"}
        assert trips_now() == _expected_trips(days)
        assert len(_deliveries_audited(home, trips_grant)) == audited

        # Night 3: day 2 corrected in a granted area, day 1 corrected only in the ungranted area, a new day 3.
        days = {d1: {"bump": {"330110": 7}}, d2: {"bump": {"330108": 100}}, d3: {}}
        _publish(home, 3, days, names)
        results = run()
        assert results[trips_grant].days == [str(d2), str(d3)]  # day 1's change is outside the grant
        assert results[trips_grant].rows == 2 * len(GRANTED_AREAS) * PEOPLE
        assert results[areas_grant].status == "unchanged"
        assert trips_now() == _expected_trips(days)  # replaced, no duplicates
        after_night_3 = trips_now()

        # Night 4: the consumer's DBA narrowed the label column; day 3 corrected and a new day 4 whose
        # last area has a label too long for it: the transaction (day 3 already deleted, rows inserted)
        # is rolled back, tried 3 times, reported; the table is as before. The dimension is still delivered.
        with engine.begin() as con:
            q = '"' if backend == "postgresql" else "`"
            column_type = "VARCHAR(5)" if backend == "postgresql" else "VARCHAR(5) NULL"
            alter = "ALTER COLUMN label TYPE" if backend == "postgresql" else "MODIFY label"
            con.execute(text(f"ALTER TABLE {q}{schema}{q}.{q}{trips_table}{q} {alter} {column_type}"))
        days = {**days, d3: {"bump": {"330106": 1}}, d4: {"label": {("330108", 2): "much too long"}}}
        names = {**names, "330106": "西湖区(新)"}
        _publish(home, 4, days, names)
        results = run()
        failed = results[trips_grant]
        assert failed.status == "failed" and failed.attempts == FAST.attempts
        assert "too long" in failed.error.lower()
        assert trips_now() == after_night_3  # never half-applied
        assert results[areas_grant].status == "delivered" and areas_now() == sorted(names.items())
        record = delivery_records(store, trips_grant)[0]
        assert (record["status"], record["attempts"], record["days"]) == ("failed", 3, [str(d3), str(d4)])
        failure = _deliveries_audited(home, trips_grant)[-1]
        assert failure["outcome"] == "error" and failure["action"] == "export"

        # Night 5: the column fixed, the same publication's days 3 and 4 go out (failed days are not lost).
        with engine.begin() as con:
            column_type = "TEXT" if backend == "postgresql" else "TEXT NULL"
            con.execute(text(f"ALTER TABLE {q}{schema}{q}.{q}{trips_table}{q} {alter} {column_type}"))
        results = run()
        assert results[trips_grant].status == "delivered" and results[trips_grant].days == [str(d3), str(d4)]
        assert trips_now() == _expected_trips(days)
        delivered = _deliveries_audited(home, trips_grant)[-1]
        assert delivered["outcome"] == "ok" and delivered["rows"] == 2 * len(GRANTED_AREAS) * PEOPLE

        # Night 6: the trips grant revoked, the areas grant past its end: nothing more is pushed (what was
        # delivered stays), though the publication has a new day and new names.
        revoke_grant(store, trips_grant, by="test")
        before = (trips_now(), areas_now())
        _publish(home, 6, {**days, d5: {}}, {**names, "330108": "滨江区(新)"})
        later = datetime(2027, 6, 1)  # after the areas grant's end (2027-05-31), before the trips grant's
        assert deliver_all(store, config=FAST, now=later, sleep=lambda s: None) == []
        assert (trips_now(), areas_now()) == before

        # The password came from the environment and is nowhere in the records.
        audit_text = (home / "audit" / "audit.jsonl").read_text(encoding="utf-8")
        assert PASSWORD not in audit_text
        assert all(
            PASSWORD not in str(r) for g in (trips_grant, areas_grant) for r in delivery_records(store, g)
        )
        assert all(r["grant_id"] for r in _audit_records(home) if r["via"] == "delivery")


def test_failures_are_retried_with_a_growing_pause(lake):
    """A consumer database that cannot be reached: each try is paused before the next, then reported."""
    home, store = lake
    trips_grant, areas_grant, _ends = _grants(store)
    set_target(store, url="postgresql+psycopg2://nobody@127.0.0.1:1/none", department="JTJ", by="test")
    _publish(home, 1, {date(2026, 10, 1): {}}, {"330106": "西湖区"})
    pauses: list[float] = []
    results = deliver_all(store, config=Delivery(attempts=3, backoff_seconds=0.5), sleep=pauses.append)
    assert [r.status for r in results] == ["failed", "failed"]
    assert pauses == [0.5, 1.0] * 2  # two pauses between three tries, per grant
    assert all(r.error and "OperationalError" in r.error for r in results)


def test_a_grant_without_a_target_is_reported(lake):
    home, store = lake
    trips_grant, _areas, _ends = _grants(store)
    _publish(home, 1, {date(2026, 10, 1): {}}, {"330106": "西湖区"})
    results = {r.grant_id: r for r in deliver_all(store, config=FAST, sleep=lambda s: None)}
    assert results[trips_grant].status == "failed" and "no target" in results[trips_grant].error
    assert results[trips_grant].attempts == 0
    assert _deliveries_audited(home, trips_grant)[-1]["outcome"] == "error"


def test_targets_keep_no_password_and_name_postgres_or_mysql(lake):
    _home, store = lake
    with pytest.raises(TargetError, match="password"):
        set_target(store, url="postgresql://u:secret@db/x", department="JTJ", by="test")
    with pytest.raises(TargetError, match="PostgreSQL or MySQL"):
        set_target(store, url="sqlite:///x.db", department="JTJ", by="test")
    with pytest.raises(TargetError, match="exactly one"):
        set_target(store, url="postgresql://u@db/x", by="test")


def test_no_table_grants_is_a_no_op(lake):
    _home, store = lake
    assert deliver_all(store) == []  # no publication, no configuration read: nothing to do


# --- the Dagster asset ------------------------------------------------------------------------------------
def _materialize(home: Path):
    from dagster import DagsterInstance, materialize

    from assets.resources import PublicationResource
    from assets.sharing_delivery import sharing_delivery

    # The instance first, as run_nightly does: resolving the definitions reads the current instance's state.
    with DagsterInstance.ephemeral() as instance:
        return materialize(
            [sharing_delivery],
            resources={"publication": PublicationResource(directory=str(home / "pool"))},
            instance=instance,
            raise_on_error=False,
        )


def test_the_asset_is_a_no_op_without_a_sharing_database(lake, monkeypatch, tmp_path):
    home, _store = lake
    monkeypatch.delenv("CITYBRAIN_SHARING_DB_URL", raising=False)  # the default file under home: absent
    result = _materialize(home)
    assert result.success
    (event,) = result.asset_materializations_for_node("sharing_delivery")
    assert event.metadata["grants"].value == 0
    assert not (home / "sharing").exists()  # nothing was created


@pytest.mark.server
def test_the_asset_tries_every_grant_then_fails_with_the_failures(lake, monkeypatch, tmp_path):
    """One grant delivered into PostgreSQL, one with its own (unreachable) target: the asset fails, after
    the good one was delivered; the retry pauses come from the configuration file."""
    home, store = lake
    config = tmp_path / "sharing.yaml"
    config.write_text("delivery:\n  attempts: 2\n  backoff_seconds: 0\n", encoding="utf-8")
    monkeypatch.setenv("CITYBRAIN_SHARING_CONFIG", str(config))
    monkeypatch.setenv("CITYBRAIN_SHARING_DB_URL", str(store.engine.url))
    with consumer_database("postgresql") as (engine, url, schema):
        trips_grant, areas_grant, _ends = _grants(store)
        set_target(store, url=url, department="JTJ", schema=schema, by="test")
        set_target(
            store, url="postgresql+psycopg2://nobody@127.0.0.1:1/none", grant_id=areas_grant, by="test"
        )
        days = {date(2026, 10, 1): {}}
        _publish(home, 1, days, {"330106": "西湖区"})
        result = _materialize(home)
        assert not result.success
        failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
        info = failure.step_failure_data.user_failure_data
        assert f"grant {areas_grant}" in info.description
        assert info.metadata["failures"].value == 1 and info.metadata["grants_delivered"].value == 1
        assert _consumer_rows(engine, schema, f"fct_trips_g{trips_grant}", FACT_COLUMNS) == _expected_trips(
            days
        )
        assert delivery_records(store, areas_grant)[0]["attempts"] == 2


@pytest.mark.server
def test_the_operator_sets_targets_runs_and_lists_deliveries_from_the_cli(lake, monkeypatch, capsys):
    from orchestration.cli import main

    home, store = lake
    monkeypatch.setenv("CITYBRAIN_SHARING_DB_URL", str(store.engine.url))
    with consumer_database("mariadb") as (engine, url, schema):
        trips_grant, areas_grant, _ends = _grants(store)
        days = {date(2026, 10, 1): {}, date(2026, 10, 2): {}}
        _publish(home, 1, days, {"330106": "西湖区"})
        base = ["sharing", "delivery", "target", "--department", "JTJ", "--schema", schema]
        assert main([*base, "--url", "mysql+pymysql://root:secret@127.0.0.1:3306/test"]) == 2
        assert "password" in capsys.readouterr().err
        assert main([*base, "--url", url]) == 0
        assert main(["sharing", "delivery", "run"]) == 0
        out = capsys.readouterr().out
        assert (
            f"grant {trips_grant}: delivered {len(_expected_trips(days))} rows (2026-10-01,2026-10-02)" in out
        )
        assert _consumer_rows(engine, schema, f"fct_trips_g{trips_grant}", FACT_COLUMNS) == _expected_trips(
            days
        )
        assert main(["sharing", "delivery", "list", "--grant", str(areas_grant)]) == 0
        (line,) = capsys.readouterr().out.splitlines()
        assert json.loads(line)["status"] == "delivered" and json.loads(line)["rows"] == 1
