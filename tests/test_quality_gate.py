"""The quality gate end to end: a good night publishes; a bad night holds back the tables built from what
failed (they keep the good night's content, marked stale) and publishes the rest; a broken delivery fails
ingestion and publishes nothing; a reader in another process never gets an error, and Data Docs name every
suite. The good
night's publication is also checked for governance: tiers follow the manifest, the open tier holds no
resident ID, mobile number or registry name, and the publication is audited.

The bad night is the generator's defect rate turned up for a new day, delivered into the same lake.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import date

import duckdb
import pytest

import citybrain.access as access
from assets.dbt_project import citybrain_dbt_project
from citybrain import settings
from citybrain.access import audit
from citybrain.access.pii_scan import registry_names, scan_tier_file
from citybrain.publication import classification_from_manifest, list_publications, live_version, tier_path
from citybrain.quality.suites import load_suites
from demo_city.generate import DemoConfig, generate_demo_city
from orchestration.status import collect_status
from tests.demo_lake import demo_lake, run_nightly

COUNTIES = ["330106", "330108", "320505"]  # two Hangzhou districts and Suzhou's Huqiu: across cities
GOOD_DAYS = ["2026-10-05", "2026-10-06"]
BAD_DAY = "2026-10-07"
HOSTILE_DAY = "2026-10-08"  # an operator delivers a truncated gzip: ingestion fails, nothing is published
OD_FILE = "operators/cmcc/od/{day}/od_district.csv.gz"

READER = textwrap.dedent(
    """
    import json, pathlib, sys, time, duckdb
    path, stop = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    reads, errors, versions = 0, [], set()
    while not stop.exists():
        try:
            with duckdb.connect(str(path), read_only=True) as con:
                version, table_rows = con.execute("SELECT version, table_rows FROM meta.publication").fetchone()
                for table, rows in json.loads(table_rows).items():
                    if con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] != rows:
                        errors.append(f"{version}: {table} does not have {rows} rows")
                versions.add(version)
                reads += 1
        except Exception as error:  # noqa: BLE001 - the reader reports every failure
            errors.append(repr(error))
        time.sleep(0.05)
    print(json.dumps({"reads": reads, "errors": errors[:5], "versions": sorted(versions)}))
    """
)


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    home = tmp_path_factory.mktemp("gate")
    with demo_lake(home, COUNTIES, GOOD_DAYS, residents=3000, defect_rate=0.02) as summary:
        good = run_nightly(GOOD_DAYS[0], GOOD_DAYS[-1])
        good_version = live_version()
        names = registry_names(settings.warehouse_path())  # the people whose names must not be published
        # The next night's deliveries come from a city whose departments got much sloppier.
        generate_demo_city(
            DemoConfig(
                counties=COUNTIES,
                residents=3000,
                days=1,
                end_date=date.fromisoformat(BAD_DAY),
                defect_rate=0.45,
                landing=home / "landing",
                demo_dir=home / "bad_night_truth",
            )
        )
        stop = home / "stop-reader"
        reader = subprocess.Popen(
            [sys.executable, "-c", READER, str(tier_path("open")), str(stop)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            bad = run_nightly(BAD_DAY, BAD_DAY)
        finally:
            stop.touch()
            report = json.loads(reader.communicate(timeout=120)[0])
        live_after_bad = live_version()
        status_after_bad = collect_status()
        publications_after_bad = list_publications()
        good_od = (home / "landing" / OD_FILE.format(day=GOOD_DAYS[-1].replace("-", ""))).read_bytes()
        hostile_od = home / "landing" / OD_FILE.format(day=HOSTILE_DAY.replace("-", ""))
        hostile_od.parent.mkdir(parents=True)
        hostile_od.write_bytes(good_od[: len(good_od) // 2])
        hostile = run_nightly(HOSTILE_DAY, HOSTILE_DAY)
        yield {
            "home": home,
            "summary": summary,
            "good": good,
            "good_version": good_version,
            "bad": bad,
            "reader": report,
            "live_after_bad": live_after_bad,
            "publications_after_bad": publications_after_bad,
            "hostile": hostile,
            "live_after_hostile": live_version(),
            "publications": list_publications(),
            "status": status_after_bad,
            "registry_names": names,
        }


def _materialized(result, key: str) -> bool:
    return any(e.asset_key.to_user_string() == key for e in result.get_asset_materialization_events())


def test_a_good_night_passes_the_gate_and_publishes(lake):
    good = lake["good"]
    assert good.success
    evaluations = [e for e in good.get_asset_check_evaluations() if e.check_name == "gx_blocking"]
    assert {e.asset_key.to_user_string() for e in evaluations} == {
        "/".join(s.asset_path) for s in load_suites()
    }, "every suite ran as a blocking check"
    assert all(e.passed for e in evaluations), [e.description for e in evaluations if not e.passed]
    assert _materialized(good, "pool_publication")
    assert lake["good_version"] is not None


def test_the_bad_night_holds_back_what_failed_and_publishes_the_rest(lake):
    bad = lake["bad"]
    failed = [e for e in bad.get_asset_check_evaluations() if e.check_name == "gx_blocking" and not e.passed]
    assert failed, "the defect-ridden deliveries must fail a blocking check"
    assert all(e.blocking and "held back at publication" in e.description for e in failed)
    quarantine = [e for e in failed if "citybrain_quarantine_share" in (e.description or "")]
    assert quarantine, [e.description for e in failed]
    assert _materialized(bad, "pool_publication")
    good, bad_publication = lake["publications_after_bad"]
    assert good["version"] == lake["good_version"] and lake["live_after_bad"] == bad_publication["version"]
    stale = bad_publication["stale"]
    assert stale, "the tables built from the failed deliveries are held back"
    good_rows = {t: n for tables in good["tables"].values() for t, n in tables.items()}
    bad_rows = {t: n for tables in bad_publication["tables"].values() for t, n in tables.items()}
    for table, hold in stale.items():  # a held-back table keeps the good night's content
        assert hold["whole"] and hold["kept_version"] == lake["good_version"], (table, hold)
        assert bad_rows[table] == good_rows[table], table
        assert hold["failed_checks"] and hold["reason"].startswith("blocking checks failed")
    # The failure names the failing expectations, with unexpected counts and example rows.
    metadata = quarantine[0].metadata
    details = metadata["failed"].value
    assert details and details[0]["examples"] and details[0]["examples"][0]["quarantined_share"] > 0.25


def test_results_are_recorded_per_expectation(lake):
    with duckdb.connect(str(lake["home"] / "warehouse.duckdb"), read_only=True) as con:
        runs = con.execute(
            "SELECT run_id, count(*), count(*) FILTER (WHERE NOT success AND severity = 'blocking') "
            "FROM quality.expectation_results GROUP BY run_id ORDER BY min(evaluated_at)"
        ).fetchall()
    assert [r[0] for r in runs] == [lake["good"].run_id, lake["bad"].run_id]
    assert runs[0][2] == 0 and runs[1][2] > 0


def test_a_reader_during_the_failed_night_saw_the_live_version_without_error(lake):
    report = lake["reader"]
    assert report["errors"] == []
    assert report["reads"] > 5
    assert set(report["versions"]) <= {lake["good_version"], lake["live_after_bad"]}


def test_the_published_version_is_traceable_to_run_and_files(lake):
    with duckdb.connect(str(tier_path("conditional", lake["home"] / "pool")), read_only=True) as con:
        run_id, partitions = con.execute("SELECT run_id, partitions FROM meta.publication").fetchone()
        files = con.execute(
            "SELECT count(DISTINCT source_file), count(*) FILTER (WHERE file_sha256 IS NULL AND source_file NOT LIKE 'db:%' AND source_file NOT LIKE 'http:%') FROM meta.deliveries"
        ).fetchone()
        checks = con.execute("SELECT count(*), count(DISTINCT suite) FROM meta.check_results").fetchone()
    assert run_id == lake["bad"].run_id and partitions == [BAD_DAY]
    assert files[0] > 16 and files[1] == 0
    assert checks[0] > 100 and checks[1] == len(load_suites())


def test_data_docs_name_every_suite(lake):
    index = lake["home"] / "quality" / "gx" / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"
    assert index.exists()
    html = index.read_text(encoding="utf-8")
    missing = [s.dataset for s in load_suites() if s.dataset not in html]
    assert not missing, f"Data Docs do not list {missing}"


def test_data_docs_render_each_run_once_and_cap_the_index(lake):
    """Each check step renders only its own suites and results (data_docs.py): the good night's pages
    are still there after the bad night's, the index links the newest run, and it is capped."""
    from citybrain.quality.data_docs import INDEX_LIMIT

    project = lake["home"] / "quality" / "gx" / "gx"
    pages = [
        p.as_posix()
        for p in (project / "uncommitted" / "data_docs" / "local_site" / "validations").rglob("*.html")
    ]
    for run in (lake["good"], lake["bad"]):
        assert any(f"/{run.run_id}/" in page for page in pages), run.run_id
    index = (project / "uncommitted" / "data_docs" / "local_site" / "index.html").read_text(encoding="utf-8")
    assert lake["bad"].run_id in index
    assert f"validation_results_limit: {INDEX_LIMIT}" in (project / "great_expectations.yml").read_text()


def test_status_reports_the_failed_checks_and_the_live_version(lake):
    status = lake["status"]
    assert status["published"]["version"] == lake["live_after_bad"]
    assert status["published"]["stale_tables"] == lake["publications_after_bad"][-1]["stale"]
    blocking = [c for c in status["failed_checks"] if c["severity"] == "blocking"]
    assert blocking and all(c["run_id"] == lake["bad"].run_id for c in blocking)
    assert any(c["expectation"] == "citybrain_quarantine_share" for c in blocking)
    assert any(q["quarantined"] > 0 for q in status["quarantine"])
    json.dumps(status)  # the --json form


def test_no_personal_data_in_any_published_open_table(lake):
    names = lake["registry_names"]
    assert len(names) > 1000, "the registry names to look for were read"
    path = tier_path("open", lake["home"] / "pool")
    with duckdb.connect(str(path), read_only=True) as con:
        text_columns = con.execute(
            "SELECT count(*) FROM duckdb_columns() WHERE schema_name = 'pool' AND data_type = 'VARCHAR'"
        ).fetchone()[0]
    assert text_columns > 5
    findings = scan_tier_file(path, names)
    assert not findings, "\n".join(str(f) for f in findings[:20])


def test_no_small_cell_is_published_or_recoverable_in_the_open_tier(lake):
    """Independent recomputation (tests/small_cells_recompute.py, no pipeline code): in the published open
    tier no count of people or trips is 1..k-1, and no hidden cell can be recovered from a margin, within
    the facts or from the district totals of ind_district_monthly (docs/GOVERNANCE.md)."""
    import yaml

    from citybrain.privacy.config import small_cell_k
    from tests.small_cells_recompute import open_tier_findings

    project = yaml.safe_load(
        (settings.REPO_ROOT / "dbt_project" / "dbt_project.yml").read_text(encoding="utf-8")
    )
    found = open_tier_findings(
        tier_path("open", lake["home"] / "pool"), lake["home"] / "warehouse.duckdb", small_cell_k(),
        project["vars"]["night_hours"],
    )  # fmt: skip
    assert found["hidden_presence_cells"] > 0, "the lake has small cells, so the check means something"
    assert found["small"] == []
    for margin in ("presence", "od_by_origin", "od_by_destination", "district_residents"):
        assert found[margin].empty, (margin, found[margin].head(10).to_dict("records"))
    assert found["recovered_matches_truth"]


def test_the_real_publication_follows_the_manifest_and_is_audited(lake):
    classification = classification_from_manifest(citybrain_dbt_project.manifest_path)
    publication = list_publications()[0]
    assert publication["run_id"] == lake["good"].run_id
    for tier in ("open", "conditional"):
        with duckdb.connect(str(tier_path(tier)), read_only=True) as con:
            tables = {
                t
                for (t,) in con.execute(
                    "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'pool'"
                ).fetchall()
            }
        assert tables == {t for t, c in classification.items() if c == tier}
    restricted = [f"pool.{t}" for t, c in classification.items() if c == "restricted"]
    assert sorted(publication["withheld"]) == sorted(restricted)
    records = [r for r in audit.read_records() if r["action"] == "publication"]
    assert [(r["run_id"], r["outcome"]) for r in records] == [
        (lake["good"].run_id, "ok"),
        (lake["bad"].run_id, "ok"),
    ]
    # The machine's owner reaches the real published data through the access layer.
    with access.connect(local_operator=True) as session:
        frame = session.df("SELECT count(*) AS n FROM pool.dim_district")
    assert frame["n"].tolist()[0] == len(COUNTIES)


def test_a_truncated_delivery_fails_ingestion_by_name_and_the_live_pool_stays(lake):
    hostile = lake["hostile"]
    assert not hostile.success
    failures = [
        e.step_failure_data.error.message
        for e in hostile.all_events
        if e.is_step_failure and e.step_failure_data.error
    ]
    assert any("od_district.csv.gz" in m and "gzip" in m.lower() for m in failures), failures
    assert not _materialized(hostile, "pool_publication")
    assert lake["live_after_hostile"] == lake["live_after_bad"]
    assert len(lake["publications"]) == 2, "the hostile night published nothing"
