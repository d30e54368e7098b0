"""End to end on a small generated city: the main job ingests every feed through Dagster, and what the
warehouse quarantined is exactly what the generator's ground truth says it injected, row for row."""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter

import duckdb
import pytest

from tests.demo_lake import demo_lake, ingest, run_nightly
from tests.services import lineage_receiver

DAYS = ["2026-11-19", "2026-11-20"]
COUNTIES = ["330102", "330105", "310115"]  # two Hangzhou districts and Shanghai Pudong: across provinces


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    home = tmp_path_factory.mktemp("city")
    with (
        demo_lake(home, COUNTIES, DAYS, residents=3000, defect_rate=0.03) as summary,
        lineage_receiver() as (lineage_url, lineage_events),
        pytest.MonkeyPatch.context() as mp,
    ):
        mp.setenv("CITYBRAIN_OPENLINEAGE_URL", lineage_url)
        result = run_nightly(DAYS[0], DAYS[-1])
        yield {"home": home, "summary": summary, "result": result, "lineage_events": lineage_events}


def sql(home, query, params=None):
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(query, params or []).fetchall()
    finally:
        con.close()


def manifest(home) -> list[dict]:
    with open(home / "demo" / "ground_truth" / "defects.csv", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_the_nightly_job_succeeds_and_loads_every_feed(city, catalog):
    assert city["result"].success
    for feed in catalog.feeds:
        (n,) = sql(city["home"], f"SELECT count(*) FROM raw.{feed.id}")[0]
        assert n > 0, feed.id
    assert sql(city["home"], "SELECT DISTINCT _partition FROM raw.operator_b_presence ORDER BY 1") == [
        (d,) for d in DAYS
    ]


def test_each_dbt_step_is_followed_by_its_check_step(city):
    """A check step starts as soon as the dbt step it checks has finished, before the next dbt step that is
    ready too: the check steps' Data Docs then render while a dbt step runs, and no check step waits for
    another's (assets/quality.py). Without the priority, Dagster took the daily models first."""
    started = [e.step_key for e in city["result"].all_events if e.is_step_start]
    dbt_steps = [key for key in started if key.startswith("citybrain_dbt_")]
    assert dbt_steps == ["citybrain_dbt_models", "citybrain_dbt_daily_models", "citybrain_dbt_indicators"]
    for producer in dbt_steps:
        assert started[started.index(producer) + 1] == f"gx_{producer}", started


def test_quarantine_equals_the_injected_row_defects_exactly(city):
    expected = {
        (d["file"], int(d["row_number"]), d["defect"])
        for d in manifest(city["home"])
        if d["layer"] == "raw" and not d["file"].startswith(("db:", "api:"))
    }
    actual = set(sql(city["home"], "SELECT source_file, row_number, reason FROM raw.quarantine"))
    assert expected and actual == expected
    by_reason = Counter(reason for _, _, reason in actual)
    assert set(by_reason) == {
        "column_count_mismatch",
        "undecodable_bytes",
        "invalid_json",
        "not_a_json_object",
        "missing_key",
    }


def test_every_record_written_is_loaded_or_quarantined(city):
    written = json.loads((city["home"] / "demo" / "ground_truth" / "summary.json").read_text())[
        "rows_written"
    ]
    logged = {
        source: (received, loaded, quarantined)
        for source, received, loaded, quarantined in sql(
            city["home"],
            "SELECT source_file, rows_received, rows_loaded, rows_quarantined FROM raw.ingestion_log WHERE status = 'loaded'",
        )
    }
    files = {k: v for k, v in written.items() if not k.startswith(("db:", "api:"))}
    assert set(files) <= set(logged)
    for source, records in files.items():
        received, loaded, quarantined = logged[source]
        assert received == records == loaded + quarantined, source
    fetched = {
        prefix: sum(received for source, (received, _, _) in logged.items() if source.startswith(prefix))
        for prefix in ("http:", "db:")
    }
    assert fetched["http:"] == written["api:hotline_tickets"]  # each ticket once, in its latest version
    assert fetched["db:"] == written["db:si_insured"] + written["db:si_unit"]


def test_identities_are_consistent_across_feeds(city):
    home = city["home"]
    (shared,) = sql(
        home,
        "SELECT count(DISTINCT i.id_number) FROM raw.si_insured i JOIN raw.household_registry r USING (id_number)",
    )[0]
    (insured,) = sql(home, "SELECT count(DISTINCT id_number) FROM raw.si_insured")[0]
    assert shared > 0.9 * insured
    (firms,) = sql(
        home, "SELECT count(DISTINCT u.uscc) FROM raw.si_unit u JOIN raw.legal_entities e USING (uscc)"
    )[0]
    assert firms > 0


def test_rerun_adds_nothing_and_redelivery_replaces(city):
    home = city["home"]
    before = sql(home, "SELECT count(*) FROM raw.operator_a_presence")[0][0]
    rerun = ingest(DAYS[0], DAYS[-1])  # raw layer only: the pool reruns are tested in test_pool_incremental
    assert rerun.success
    assert sql(home, "SELECT count(*) FROM raw.operator_a_presence")[0][0] == before
    new_rows = sql(
        home,
        "SELECT sum(rows_loaded) FROM raw.ingestion_log WHERE batch_id = ? AND status = 'loaded'",
        [rerun.run_id],
    )[0][0]
    assert new_rows == 0  # only empty incremental fetches

    redelivery = json.loads((home / "demo" / "ground_truth" / "summary.json").read_text())["redeliveries"][0]
    shutil.copyfile(home / "demo" / redelivery["corrected"], home / "landing" / redelivery["file"])
    corrected = ingest(DAYS[0], DAYS[0])
    assert corrected.success
    statuses = sql(
        home,
        "SELECT status, batch_id = ? FROM raw.ingestion_log WHERE source_file = ? ORDER BY started_at",
        [corrected.run_id, redelivery["file"]],
    )
    assert statuses == [("superseded", False), ("loaded", True)]
    current = sql(
        home, "SELECT count(*) FROM raw.operator_a_presence WHERE _source_file = ?", [redelivery["file"]]
    )[0][0]
    assert current == redelivery["rows"]
    (history,) = sql(
        home,
        "SELECT count(*) FROM raw_history.operator_a_presence WHERE _superseded_by_batch = ?",
        [corrected.run_id],
    )[0]
    assert history > 0


def test_the_pool_is_built_with_indicators_for_every_district(city):
    """The same job builds the pool; indicators exist for every configured district (across provinces)
    and the telecom-estimated residents are close to where the generator's residents live."""
    import pandas as pd

    home = city["home"]
    indicators = dict(
        sql(home, "SELECT district_code, est_resident_population FROM pool.ind_district_monthly")
    )
    assert set(indicators) == set(COUNTIES)
    # Registered residents before dim_resident's k-anonymity suppression (docs/GOVERNANCE.md).
    registered = dict(
        sql(home, "SELECT district_code, count(*) FROM intermediate.int_people__residents GROUP BY 1")
    )
    assert dict(sql(home, "SELECT district_code, registered_population FROM pool.ind_district_monthly")) == {
        c: registered.get(c, 0) for c in COUNTIES
    }
    residents = pd.read_parquet(home / "demo" / "ground_truth" / "residents.parquet")
    truth = residents.groupby("home_county").size().to_dict()
    for county in COUNTIES:
        assert abs(indicators[county] - truth[county]) <= 0.2 * truth[county], county


def test_published_conditional_tables_meet_the_minimum_equivalence_class(city):
    """Every conditional table published with quasi-identifiers is k-anonymous over them, recomputed here
    with a plain GROUP BY over the published tier; the tier's meta says the same; nothing in the open tier
    is graded above general (GB/T 37964, GB/T 43697; docs/GOVERNANCE.md)."""
    from citybrain.privacy.config import min_equivalence_class

    k = min_equivalence_class()
    pool = city["home"] / "pool"
    with duckdb.connect(str(pool / "conditional" / "citybrain_conditional.duckdb"), read_only=True) as con:
        measured = con.execute(
            "SELECT table_name, quasi_identifiers, smallest_class, unique_records FROM meta.reidentification_risk"
        ).fetchall()
        assert {t for t, qis, _, _ in measured if qis} >= {"dim_resident", "fct_insurance_enrolment"}
        for table, qis, smallest, unique in measured:
            if not qis:
                continue
            columns = ", ".join(f'"{c}"' for c in qis)
            (recomputed, singles) = con.execute(
                f"SELECT min(n), count(*) FILTER (WHERE n = 1) "
                f'FROM (SELECT count(*) AS n FROM pool."{table}" GROUP BY {columns})'
            ).fetchone()
            assert recomputed >= k and (recomputed, singles) == (smallest, unique), table
    with duckdb.connect(str(pool / "open" / "citybrain_open.duckdb"), read_only=True) as con:
        grades = {g for (g,) in con.execute("SELECT DISTINCT grade FROM meta.data_grades").fetchall()}
    assert grades == {"general"}


def test_the_parquet_lake_rebuilds_the_same_pool(city, tmp_path):
    """The raw layer exported to the Parquet lake (the files a Spark deployment reads) holds everything
    the pool is built from: DuckDB building the whole dbt project from those files alone gives a pool
    equal, table by table, to the one built from the raw tables (docs/SCALE.md). Both builds run now, on
    a copy of the warehouse, because earlier tests of this module redelivered files after the nightly."""
    import json as json_

    from citybrain.lake import parquet_lake
    from citybrain.scale import parity

    home = city["home"]
    from_raw = tmp_path / "from_raw.duckdb"
    shutil.copyfile(home / "warehouse.duckdb", from_raw)
    with duckdb.connect(str(from_raw)) as con:
        parquet_lake.sync(con, tmp_path / "lake")
        # The lake's build starts with no pool; so does this one. (An existing pool keeps the cells it hid in
        # earlier builds of a day hidden when the day is rebuilt: docs/GOVERNANCE.md "Versions".)
        con.execute("DROP SCHEMA pool CASCADE")
    from_lake = tmp_path / "from_lake.duckdb"
    parity.duckdb_from_lake(tmp_path / "lake", from_lake)
    window = {"min_date": DAYS[0], "max_date": DAYS[-1]}
    for database, target in ((from_raw, "target_raw"), (from_lake, "target_lake")):
        parity.dbt_build(
            "duckdb",
            tmp_path / target,
            {"CITYBRAIN_LAKE": str(tmp_path / "lake"), "CITYBRAIN_WAREHOUSE": str(database)},
            window,
        )
    manifest = json_.loads((tmp_path / "target_lake" / "manifest.json").read_text(encoding="utf-8"))
    with duckdb.connect(str(from_lake)) as con:
        con.execute(f"ATTACH '{from_raw}' AS from_raw (READ_ONLY)")
        pool = [t["name"] for t in parity.built_tables(manifest) if t["schema"] == "pool"]
        assert len(pool) >= 12
        for name in pool:
            result = parity.compare_table(con, name, f'pool."{name}"', f'from_raw.pool."{name}"')
            assert result.equal, (name, result.problems)


def test_trace_names_the_delivered_files_behind_a_day_and_a_row(city, capsys):
    """`citybrain trace`: the files, hashes and runs behind a published table, day or row, checked against
    the landing zone's bytes hashed here."""
    import hashlib

    from orchestration.cli import main

    home, run_id = city["home"], city["result"].run_id
    day = DAYS[-1]
    landing_file = f"egov/applications_{day.replace('-', '')}.csv"
    digest = hashlib.sha256((home / "landing" / landing_file).read_bytes()).hexdigest()

    assert main(["trace", "pool.fct_service_application", "--date", day, "--json"]) == 0
    traced = json.loads(capsys.readouterr().out)
    assert traced["published_by_run"] == run_id and traced["day"] == day
    egov = [d for d in traced["deliveries"] if d["feed_id"] == "egov_applications"]
    assert [(d["source_file"], d["file_sha256"], d["loaded_by_run"]) for d in egov] == [
        (landing_file, digest, run_id)
    ]
    other_day = DAYS[0].replace("-", "")
    assert not any(other_day in d["source_file"] for d in traced["deliveries"])

    (application_id,) = sql(
        home,
        "SELECT application_id FROM pool.fct_service_application WHERE submitted_date = ? LIMIT 1",
        [day],
    )[0]
    assert main(["trace", "pool.fct_service_application", "--key", f"application_id={application_id}",
                 "--local-operator", "--json"]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out)["deliveries"] == traced["deliveries"]

    assert main(["trace", "pool.dim_enterprise"]) == 0  # a dimension: the current registry snapshot
    text = capsys.readouterr().out
    entities = next((home / "landing" / "market_regulation").glob("legal_entities_*.jsonl"))
    assert entities.relative_to(home / "landing").as_posix() in text
    assert hashlib.sha256(entities.read_bytes()).hexdigest()[:16] in text


def test_the_publication_is_sent_as_openlineage_events(city):
    """START and COMPLETE of the publishing run reached the loopback receiver, naming the raw feeds with the
    delivered files' hashes as inputs and the published tables, with column lineage, as outputs."""
    import hashlib

    events = city["lineage_events"]
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    assert {e["run"]["runId"] for e in events} == {city["result"].run_id}
    assert all(e["path"] == "/api/v1/lineage" for e in events)
    complete = events[-1]
    outputs = {o["name"]: o for o in complete["outputs"]}
    published = sql(city["home"], "SELECT count(*) FROM pool.dim_enterprise")[0][0]
    assert outputs["pool.dim_enterprise"]["outputFacets"]["outputStatistics"]["rowCount"] == published
    assert "pool.dim_resident" in outputs and "pool.fct_presence_hourly" in outputs
    name = outputs["pool.dim_enterprise"]["facets"]["columnLineage"]["fields"]["name"]["inputFields"]
    assert {(f["name"], f["field"]) for f in name} == {("raw.legal_entities", "name")}
    inputs = {i["name"]: i for i in complete["inputs"]}
    entities = next((city["home"] / "landing" / "market_regulation").glob("legal_entities_*.jsonl"))
    delivered = inputs["raw.legal_entities"]["facets"]["citybrain_deliveries"]["deliveries"]
    assert [d["sha256"] for d in delivered] == [hashlib.sha256(entities.read_bytes()).hexdigest()]


def test_each_dbt_step_logs_to_its_file_at_info(city):
    """dbt.log of each of the run's dbt steps holds the nodes' results, not every SQL statement at debug
    (assets/dbt/process_env.py): 4.7 MB a step at 1M residents, written in dbt's threads."""
    from assets.dbt_project import citybrain_dbt_project

    run = city["result"].run_id[:7]
    logs = sorted((citybrain_dbt_project.project_dir / "target").glob(f"citybrain_dbt_*-{run}-*/dbt.log"))
    assert {log.parent.name.split("-")[0] for log in logs} == {
        "citybrain_dbt_models",
        "citybrain_dbt_daily_models",
        "citybrain_dbt_indicators",
    }
    for log in logs:
        levels = Counter(
            json.loads(line)["info"]["level"] for line in log.read_text(encoding="utf-8").splitlines()
        )
        assert levels["info"] > 0, log
        assert levels["debug"] == 0, (log, levels)
