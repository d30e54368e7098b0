"""One line per finished stage while a run executes in process (`citybrain run`, `citybrain demo`).

A run of the nightly takes minutes; Dagster's console log at INFO is hundreds of lines, at WARNING it is
silent. In between, the user wants to see the stages go by with what they did: each feed's rows
received / loaded / quarantined, what each dbt step built and tested, what each check step found, which
pool version was published. Those numbers are already in the run's structured events (materialisation
metadata, asset check evaluations, dbt test observations), so the lines are made from the events as the
instance stores them (an event listener on the run), never from log text.

A step's line is printed when the step ends (success, failure or skip), with the time since the run
started; steps the executor left out because something upstream failed are named after the run.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from dagster import AssetCheckSeverity, DagsterEvent, DagsterEventType, DagsterInstance

LOG_LEVEL_ENV = "CITYBRAIN_LOG_LEVEL"
PUBLICATION_KEY = ("pool_publication",)
DBT_STEP_PREFIX = "citybrain_dbt"  # assets/dbt/models.py: citybrain_dbt_models, _daily_models, _indicators
CHECK_STEP_PREFIXES = ("gx_",)  # assets/quality.py: one GX check step per producing step
log = logging.getLogger(__name__)


def console_log_level() -> str:
    """Dagster's console logger level while progress lines are shown: WARNING unless the user asks for
    more (CITYBRAIN_LOG_LEVEL=INFO or DEBUG brings back the full Dagster log)."""
    return os.environ.get(LOG_LEVEL_ENV, "WARNING").upper()


@dataclass
class _Step:
    """What one step produced so far."""

    materializations: list = field(default_factory=list)  # AssetMaterialization
    checks: list = field(default_factory=list)  # AssetCheckEvaluation
    dbt_tests: dict = field(default_factory=dict)  # unique_id -> status, tests dbt ran outside checks


class RunProgress:
    """Turns a run's events into progress lines; feed it events in order with `on_event`."""

    def __init__(self, emit: Callable[[str], None] = print, started: float | None = None):
        self.emit = emit
        self.started = time.time() if started is None else started
        self.steps: dict[str, _Step] = {}
        self.finished: set[str] = set()
        self.lines: list[str] = []

    def on_event(self, event: DagsterEvent, timestamp: float | None = None) -> None:
        step_key = event.step_key
        if step_key is None:
            return
        step = self.steps.setdefault(step_key, _Step())
        kind = event.event_type
        if kind == DagsterEventType.ASSET_MATERIALIZATION:
            step.materializations.append(event.step_materialization_data.materialization)
        elif kind == DagsterEventType.ASSET_CHECK_EVALUATION:
            step.checks.append(event.event_specific_data)
        elif kind == DagsterEventType.ASSET_OBSERVATION:
            metadata = event.asset_observation_data.asset_observation.metadata
            unique_id = _value(metadata.get("unique_id"))
            if isinstance(unique_id, str) and unique_id.startswith("test."):
                step.dbt_tests[unique_id] = str(_value(metadata.get("status")))
        elif kind in (
            DagsterEventType.STEP_SUCCESS,
            DagsterEventType.STEP_FAILURE,
            DagsterEventType.STEP_SKIPPED,
        ):
            self.finished.add(step_key)
            for line in describe_step(step_key, step, event):
                self._print(line, timestamp)

    def report_not_run(self, planned_steps: list[str]) -> None:
        """Steps of the plan that never ran: the in-process executor leaves the steps downstream of a
        failure out without an event, so they are named once the run is over."""
        for step_key in planned_steps:
            if step_key not in self.finished:
                stage = _stage(step_key, self.steps.get(step_key, _Step()))
                self._print(f"{stage:<8} {step_key:<30} not run (an upstream step failed)")

    def _print(self, line: str, timestamp: float | None = None) -> None:
        elapsed = (timestamp if timestamp is not None else time.time()) - self.started
        line = f"  [{elapsed:7.1f} s] {line}"
        self.lines.append(line)
        self.emit(line)

    def listener(self, entry) -> None:
        """For `DagsterInstance.add_event_listener`: called with each stored event log entry. A mistake
        here must never fail the run, so it is logged and the line dropped."""
        try:
            if entry.is_dagster_event:
                self.on_event(entry.get_dagster_event(), entry.timestamp)
        except Exception:  # noqa: BLE001 - progress is cosmetic; the run goes on
            log.warning("progress line failed", exc_info=True)


def execute_with_progress(
    job, instance: DagsterInstance, emit: Callable[[str], None] | None = None, **kwargs
):
    """``job.execute_in_process`` with a progress line per finished step (to ``emit``, default stdout)
    and the console turned down to `console_log_level()`. Other keyword arguments go to
    ``execute_in_process``."""
    if emit is None:
        stdout = sys.stdout  # bound now: the run's own stdout may be silenced below

        def emit(line: str) -> None:
            print(line, file=stdout, flush=True)

    run_id = kwargs.pop("run_id", None) or str(uuid.uuid4())
    progress = RunProgress(emit)
    instance.add_event_listener(run_id, progress.listener)
    level = console_log_level()
    run_config = {**kwargs.pop("run_config", {}), "loggers": {"console": {"config": {"log_level": level}}}}
    with _quiet_console(level not in ("DEBUG", "INFO")):
        result = job.execute_in_process(instance=instance, run_id=run_id, run_config=run_config, **kwargs)
    run = instance.get_run_by_id(run_id)
    if run is not None and run.execution_plan_snapshot_id:
        plan = instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
        progress.report_not_run(list(plan.step_keys_to_execute))
    return result


@contextlib.contextmanager
def _quiet_console(quiet: bool) -> Iterator[None]:
    """Below INFO, also silence what bypasses Dagster's logger: dagster-dbt re-emits every dbt log line
    on stdout (hundreds per run). Errors still reach the console through Dagster's logger (stderr) and
    the FAILED progress lines; at INFO everything is kept, also in the run's captured stdout in the UI."""
    if not quiet:
        yield
        return
    with open(os.devnull, "w", encoding="utf-8") as sink, contextlib.redirect_stdout(sink):
        yield


def describe_step(step_key: str, step: _Step, end: DagsterEvent) -> list[str]:
    """The line(s) for a finished step: one per feed for ingestion, one per step otherwise."""
    failed = end.event_type == DagsterEventType.STEP_FAILURE
    if end.event_type == DagsterEventType.STEP_SKIPPED:
        return [
            f"{_stage(step_key, step):<8} {step_key:<30} skipped (an upstream step failed or was skipped)"
        ]
    suffix = f"  FAILED: {_failure_message(end)}" if failed else ""
    ingested = [m for m in step.materializations if "rows_received" in m.metadata]
    if ingested or (failed and _is_ingestion(step_key)):
        return _ingestion_lines(step_key, ingested, end, suffix)
    publication = [m for m in step.materializations if tuple(m.asset_key.path) == PUBLICATION_KEY]
    if publication:
        metadata = publication[0].metadata
        rows = _value(metadata.get("dagster/row_count"))
        counted = f", {rows:,} rows" if isinstance(rows, int) else ""
        return [f"{'publish':<8} pool version {_value(metadata.get('version'))} published{counted}{suffix}"]
    if step_key.startswith(DBT_STEP_PREFIX) or step.dbt_tests:
        return [f"{'dbt':<8} {step_key:<30} {_dbt_counts(step)}{suffix}"]
    if step.checks and not step.materializations:
        blocking = sorted({_check_name(c) for c in step.checks if _blocks(c)})
        if failed and blocking:  # name the checks rather than repeat Dagster's exception text
            suffix = "  FAILED: " + ", ".join(blocking)
        elif blocking:  # the run goes on; the tables built from these datasets are held back at publication
            suffix = "  HELD BACK: " + ", ".join(blocking)
        return [f"{'checks':<8} {step_key:<30} {_check_counts(step.checks)}{suffix}"]
    built = len(step.materializations)
    return [
        f"{_stage(step_key, step):<8} {step_key:<30} {built} asset{'s' * (built != 1)} materialized{suffix}"
    ]


def _ingestion_lines(step_key: str, ingested: list, end: DagsterEvent, suffix: str) -> list[str]:
    lines = []
    latest = {m.asset_key: m for m in ingested}  # one per partition, each with the step's totals
    for materialization in latest.values():
        lines.append(
            f"{'ingest':<8} {materialization.asset_key.path[-1]:<30} {_rows(materialization.metadata)}"
        )
    if not ingested:  # a failed ingestion step: its Failure carries the counts so far
        failure = end.step_failure_data.user_failure_data if end.step_failure_data else None
        metadata = failure.metadata if failure else {}
        counts = _rows(metadata) if "rows_received" in metadata else ""
        lines.append(f"{'ingest':<8} {_feed_of(step_key):<30} {counts}".rstrip())
    lines[-1] += suffix
    return lines


def _rows(metadata) -> str:
    received, loaded, quarantined = (
        _value(metadata[k]) for k in ("rows_received", "rows_loaded", "rows_quarantined")
    )
    unchanged = _value(metadata.get("deliveries_unchanged", 0)) or 0
    text = f"received {received:>9,}  loaded {loaded:>9,}  quarantined {quarantined:>7,}"
    return text + (f"  ({unchanged} unchanged deliveries skipped)" if unchanged else "")


def _dbt_counts(step: _Step) -> str:
    tests_passed = sum(c.passed for c in step.checks) + sum(s == "pass" for s in step.dbt_tests.values())
    tests_failed = sum(not c.passed for c in step.checks) + sum(
        s in ("fail", "error") for s in step.dbt_tests.values()
    )
    tests_warned = sum(s == "warn" for s in step.dbt_tests.values())
    built = len(step.materializations)
    text = f"{built} model{'s' * (built != 1)} built, tests {tests_passed} passed, {tests_failed} failed"
    return text + (f", {tests_warned} warned" if tests_warned else "")


def _blocks(check) -> bool:
    """A failed blocking check: severity ERROR, or a blocking check that holds tables back at publication
    (reported as WARN so the run goes on: assets/quality.py)."""
    return not check.passed and (check.severity == AssetCheckSeverity.ERROR or bool(check.blocking))


def _check_name(check) -> str:
    return f"{check.asset_key.to_user_string()}:{check.check_name}"


def _check_counts(checks: list) -> str:
    passed = sum(c.passed for c in checks)
    blocking = sum(_blocks(c) for c in checks)
    warnings = sum(not c.passed and not _blocks(c) for c in checks)
    return f"{passed} passed, {blocking} failed blocking, {warnings} warning{'s' * (warnings != 1)}"


def _failure_message(end: DagsterEvent) -> str:
    data = end.step_failure_data
    if data and data.user_failure_data and data.user_failure_data.description:
        text = data.user_failure_data.description
    elif data and data.error:
        text = data.error.message
    else:
        text = "step failed"
    first = text.strip().splitlines()[0] if text.strip() else "step failed"
    return first[:200]


def _is_ingestion(step_key: str) -> bool:
    from assets.ingestion import RAW_PREFIX

    return step_key.startswith(f"{RAW_PREFIX}__")


def _feed_of(step_key: str) -> str:
    return step_key.split("__", 1)[-1]


def _stage(step_key: str, step: _Step) -> str:
    if _is_ingestion(step_key):
        return "ingest"
    if step_key.startswith(DBT_STEP_PREFIX):
        return "dbt"
    if step_key == PUBLICATION_KEY[0]:
        return "publish"
    if step.checks or step_key.startswith(CHECK_STEP_PREFIXES) or step_key.endswith("_freshness"):
        return "checks"
    return "step"


def _value(entry):
    """A metadata entry's plain value (metadata values are wrapped, e.g. IntMetadataValue)."""
    return getattr(entry, "value", entry)
