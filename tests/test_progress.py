"""Progress lines of `citybrain run`: made from a real run's events while it executes, with the counts.

The fast tests run the project's `raw_ingestion` job in process on two hand-made deliveries (with a
quarantined row each) through the same `execute_with_progress` that `citybrain run` uses: ingestion
lines per feed with rows received / loaded / quarantined, and the GX and freshness check steps with
passed / failed blocking / warnings, printed before the run ended. The slow test runs `citybrain run`
on a tiny demo city and checks the dbt and publication lines too.
"""

import re
import time

import pytest
from dagster import AssetCheckSeverity, AssetKey, DagsterEventType, DagsterInstance

from orchestration.progress import execute_with_progress
from tests.test_ingest_files import REGISTRY_ROW, egov_csv, registry_csv, write

DAY = "2026-11-20"
FEEDS = [AssetKey(["raw", "household_registry"]), AssetKey(["raw", "egov_applications"])]
LINE = re.compile(r"^  \[ *(\d+\.\d) s\] (\w+) +(\S+) +(.*)$")


def _run(job_name: str, selection: list[AssetKey], capfd):
    from orchestration.definitions import defs

    emitted: list[tuple[float, str]] = []
    tags = {"dagster/asset_partition_range_start": DAY, "dagster/asset_partition_range_end": DAY}
    with DagsterInstance.get() as instance:
        result = execute_with_progress(
            defs.resolve_job_def(job_name),
            instance,
            emit=lambda line: emitted.append((time.time(), line)),
            tags=tags,
            asset_selection=selection,
            raise_on_error=False,
        )
        (run_end,) = instance.get_records_for_run(
            result.run_id, of_type={DagsterEventType.RUN_SUCCESS, DagsterEventType.RUN_FAILURE}
        ).records
    return result, emitted, run_end.event_log_entry.timestamp, capfd.readouterr()


def _parsed(emitted) -> dict[tuple[str, str], str]:
    parsed = {}
    for _, line in emitted:
        match = LINE.match(line)
        assert match, line
        assert (match[2], match[3]) not in parsed, f"printed twice: {line}"
        parsed[(match[2], match[3])] = match[4]
    return parsed


def test_ingestion_and_check_steps_print_their_counts_while_the_run_executes(lake, catalog, capfd):
    landing = lake / "landing"
    registry = [REGISTRY_ROW.format(id=f"33010219900101123{i}", n=i) for i in range(4)]
    write(landing, "public_security/household_registry_20261120.csv", registry_csv([*registry, "x"], catalog))
    write(landing, "egov/applications_20261120.csv", egov_csv(catalog, ["A1", "A2"]) + b"A3,too,few\n")

    result, emitted, run_ended, captured = _run("raw_ingestion", FEEDS, capfd)
    assert result.success
    lines = _parsed(emitted)

    assert re.fullmatch(r"received +5 +loaded +4 +quarantined +1", lines[("ingest", "household_registry")])
    assert re.fullmatch(r"received +3 +loaded +2 +quarantined +1", lines[("ingest", "egov_applications")])

    evaluations = result.get_asset_check_evaluations()
    gx = [e for e in evaluations if e.check_name.startswith("gx_")]
    freshness = [e for e in evaluations if e.check_name == "freshness"]
    assert len(gx) == 4 and len(freshness) == 2  # blocking + warning suite per feed; freshness per feed
    for step, checks in (("gx_raw", gx), ("raw_freshness", freshness)):
        passed = sum(e.passed for e in checks)
        blocking = sum(not e.passed and e.severity == AssetCheckSeverity.ERROR for e in checks)
        warnings = sum(not e.passed and e.severity == AssetCheckSeverity.WARN for e in checks)
        assert re.fullmatch(
            rf"{passed} passed, {blocking} failed blocking, {warnings} warnings?", lines[("checks", step)]
        ), lines[("checks", step)]

    # Printed as the steps finished, not afterwards: every line before the run's end event, in order.
    assert all(at <= run_ended for at, _ in emitted)
    elapsed = [float(LINE.match(line)[1]) for _, line in emitted]
    assert elapsed == sorted(elapsed)
    # Dagster's console logger is turned down to WARNING: no per-event INFO lines.
    assert "STEP_SUCCESS" not in captured.err and "ASSET_MATERIALIZATION" not in captured.err


def test_a_failed_ingestion_step_prints_its_error_and_the_skipped_checks(lake, catalog, capfd):
    write(lake / "landing", "egov/applications_20261120.csv", b"")  # a delivery that cannot be read
    result, emitted, _, _ = _run("raw_ingestion", [FEEDS[1]], capfd)
    assert not result.success
    lines = _parsed(emitted)
    assert re.fullmatch(
        r"received +0 +loaded +0 +quarantined +0  FAILED: egov_applications: .*applications_20261120.csv.*"
        r"empty file.*",
        lines[("ingest", "egov_applications")],
    )
    assert lines[("checks", "gx_raw")] == "not run (an upstream step failed)"
    assert lines[("checks", "raw_freshness")] == "not run (an upstream step failed)"


def test_a_failed_blocking_check_is_named_on_its_step_line(lake, catalog, capfd):
    # Every row of the delivery has too few fields: all quarantined, so the suite's blocking
    # quarantine-share rule fails. The run goes on (the tables built from the feed are held back at
    # publication). (A header-only snapshot is refused at ingestion.)
    rows = ["short row,2"] * 150
    write(lake / "landing", "public_security/household_registry_20261120.csv", registry_csv(rows, catalog))
    result, emitted, _, _ = _run("raw_ingestion", [FEEDS[0]], capfd)
    assert result.success
    lines = _parsed(emitted)
    assert re.fullmatch(
        r"received +150 +loaded +0 +quarantined +150", lines[("ingest", "household_registry")]
    )
    assert re.fullmatch(
        r"\d+ passed, 1 failed blocking, \d+ warnings?  HELD BACK: raw/household_registry:gx_blocking",
        lines[("checks", "gx_raw")],
    )


@pytest.mark.slow
def test_citybrain_run_prints_every_stage_with_counts(tmp_path, capsys):
    """The whole nightly on a tiny demo city over two days through the command (about 70 s): ingestion
    (one line per feed, not per partition), dbt steps with models and tests, check steps and the
    published version, then the summary; dbt's own log stream stays off the console."""
    from orchestration.cli import main
    from tests.demo_lake import demo_lake

    with demo_lake(tmp_path / "lake", ["330102"], ["2026-11-19", DAY], residents=1000):
        assert main(["run", "--start", "2026-11-19", "--end", DAY]) == 0
    out = capsys.readouterr().out
    progress = [line for line in out.splitlines() if LINE.match(line)]
    lines = _parsed([(0.0, line) for line in progress])
    assert {stage for stage, _ in lines} >= {"ingest", "dbt", "checks", "publish"}, out
    assert "Running with dbt=" not in out
    assert re.search(r"ingest +hotline_tickets +received +[1-9][\d,]* +loaded", out)
    assert re.search(
        r"dbt +citybrain_dbt_models +[1-9]\d* models built, tests [1-9]\d* passed, 0 failed", out
    )
    assert re.search(r"checks +gx_raw +[1-9]\d* passed, 0 failed blocking", out)
    assert re.search(r"publish +pool version \S+ published, [1-9][\d,]* rows", out)
    # The progress lines come before the summary that follows the run.
    assert out.index(progress[-1]) < out.index("run ")
    # Data Docs, rendered in the background while the steps went on, are complete when the command ends:
    # a result page of this run for every suite, and the index lists them.
    from citybrain.quality.suites import load_suites

    run_id = re.search(r"^run (\S+): SUCCESS", out, re.MULTILINE)[1]
    site = tmp_path / "lake" / "quality" / "gx" / "gx" / "uncommitted" / "data_docs" / "local_site"
    rendered = {
        p.relative_to(site / "validations").parts[:2] for p in site.glob(f"validations/*/*/{run_id}/*/*.html")
    }
    assert {tuple(s.dataset.split(".")) for s in load_suites()} <= rendered
    assert run_id in (site / "index.html").read_text(encoding="utf-8")
