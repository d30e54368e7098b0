"""Run-failure alerts: what a failed run is reported as, and sending it to a webhook.

The alert is always logged; when ``CITYBRAIN_ALERT_WEBHOOK_URL`` is set it is also POSTed there as JSON
(one attempt plus one retry on a connection error, a timeout, 429 or 5xx; 4 s timeout each). Sending
never raises: a webhook that is down is logged, it must not break the sensor that reports the failure.

A run that succeeds but held pool tables back at publication (``citybrain/staleness.py``) gets a
``stale_tables`` alert (``build_stale_alert``) through the same webhook, and sharing applications past
their statutory clock an ``overdue_applications`` alert (``build_overdue_alert``), once per clock step.

Payload (``build_failure_alert``)::

    {"alert": "run_failure", "job": "city_nightly", "run_id": "…", "partition": "2026-11-20",
     "message": "Execution of run for \\"city_nightly\\" failed. Steps failed: [...]",
     "error": "<the first failed step's error, or the run's>",
     "failed_steps": [{"step": "raw__egov_applications", "error": "…"}],
     "failed_blocking_checks": [{"asset": "raw/egov_applications", "check": "gx_blocking",
                                 "partition": null, "description": "…"}],
     "run_path": "/runs/<run id>", "failed_at": "2026-11-21T02:07:12+00:00", "tags": {…}}
"""

from __future__ import annotations

import json
import logging
import os
import time
from datetime import UTC, datetime

import requests
from dagster import DagsterEvent, DagsterEventType, DagsterInstance, DagsterRun

from citybrain.vocabulary import FILE_TAG, TRIGGER_TAG

ALERT_WEBHOOK_ENV = "CITYBRAIN_ALERT_WEBHOOK_URL"
TIMEOUT_SECONDS = 4.0
ATTEMPTS = 2
RETRY_DELAY_SECONDS = 0.5
MAX_ERROR_CHARS = 2_000
RUN_TAGS = (  # tags that say what launched the run, copied into the alert
    "dagster/partition",
    "dagster/asset_partition_range_start",
    "dagster/asset_partition_range_end",
    "dagster/schedule_name",
    "dagster/sensor_name",
    "dagster/backfill",
    TRIGGER_TAG,
    FILE_TAG,
)

LOG = logging.getLogger("citybrain.alerts")


def _clip(text: str | None) -> str | None:
    if text is None:
        return None
    text = text.strip()
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


def _error_text(error) -> str | None:
    """The most telling message of a serialised error: its root cause (e.g. ``Exception: boom``)."""
    if error is None:
        return None
    while error.cause is not None:
        error = error.cause
    return error.message


def _step_error(event: DagsterEvent) -> str | None:
    data = event.step_failure_data
    if data.user_failure_data is not None and data.user_failure_data.description:
        return data.user_failure_data.description  # a dagster.Failure: its description says it all
    return _error_text(data.error)


def _partition(tags) -> str | None:
    if tags.get("dagster/partition"):
        return tags["dagster/partition"]
    start, end = (
        tags.get("dagster/asset_partition_range_start"),
        tags.get("dagster/asset_partition_range_end"),
    )
    if start and end:
        return start if start == end else f"{start}..{end}"
    return None


def build_failure_alert(instance: DagsterInstance, run: DagsterRun, failure_event: DagsterEvent) -> dict:
    """The alert for a failed run, from its run-failure event and the run's event log."""
    step_failures = [
        record.event_log_entry.dagster_event
        for record in instance.get_records_for_run(
            run_id=run.run_id, of_type=DagsterEventType.STEP_FAILURE
        ).records
    ]
    failed_steps = [{"step": e.step_key, "error": _clip(_step_error(e))} for e in step_failures]
    failed_checks = []
    for record in instance.get_records_for_run(
        run_id=run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION
    ).records:
        evaluation = record.event_log_entry.dagster_event.event_specific_data
        if evaluation.passed or not evaluation.blocking:
            continue
        failed_checks.append(
            {
                "asset": evaluation.asset_key.to_user_string(),
                "check": evaluation.check_name,
                "partition": evaluation.partition,
                "description": _clip(evaluation.description),
            }
        )
    record = instance.get_run_record_by_id(run.run_id)
    ended = record.end_time if record is not None and record.end_time else time.time()
    run_error = getattr(failure_event.event_specific_data, "error", None)
    error = failed_steps[0]["error"] if failed_steps else _clip(_error_text(run_error))
    return {
        "alert": "run_failure",
        "job": run.job_name,
        "run_id": run.run_id,
        "partition": _partition(run.tags),
        "message": _clip(failure_event.message),
        "error": error or _clip(failure_event.message),
        "failed_steps": failed_steps,
        "failed_blocking_checks": failed_checks,
        "run_path": f"/runs/{run.run_id}",
        "failed_at": datetime.fromtimestamp(ended, UTC).isoformat(timespec="seconds"),
        "tags": {k: run.tags[k] for k in RUN_TAGS if k in run.tags},
    }


STALE_ASSET = "pool_publication"
STALE_METADATA = "stale_tables"  # assets/publication.py


def build_stale_alert(instance: DagsterInstance, run: DagsterRun) -> dict | None:
    """The alert for a run that published with tables held back (stale), or None if it held none back.

    Read from the run's ``pool_publication`` materialisation: its ``stale_tables`` metadata lists each
    held-back table with why, since when and which days."""
    stale: dict = {}
    for record in instance.get_records_for_run(
        run_id=run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION
    ).records:
        materialization = record.event_log_entry.dagster_event.event_specific_data.materialization
        if materialization.asset_key.to_user_string() != STALE_ASSET:
            continue
        value = materialization.metadata.get(STALE_METADATA)
        stale = dict(value.value) if value is not None else {}
    if not stale:
        return None
    record = instance.get_run_record_by_id(run.run_id)
    ended = record.end_time if record is not None and record.end_time else time.time()
    return {
        "alert": "stale_tables",
        "job": run.job_name,
        "run_id": run.run_id,
        "partition": _partition(run.tags),
        "message": f"{len(stale)} pool table(s) held back: they keep their previous version",
        "stale_tables": [
            {
                "table": table,
                "whole": hold.get("whole"),
                "reason": _clip(hold.get("reason")),
                "stale_since": hold.get("stale_since"),
                "held_days": hold.get("held_days") or [],
                "kept_version": hold.get("kept_version"),
            }
            for table, hold in sorted(stale.items())
        ],
        "run_path": f"/runs/{run.run_id}",
        "finished_at": datetime.fromtimestamp(ended, UTC).isoformat(timespec="seconds"),
        "tags": {k: run.tags[k] for k in RUN_TAGS if k in run.tags},
    }


def overdue_clock_key(application: dict) -> str:
    """One clock step of one application: its id and the due day of the running clock. Forwarding starts a
    new clock (a later due day); escalating keeps the clock, so it is not alerted twice."""
    return f"{application['application_id']}:{application['due_on']}"


def build_overdue_alert(applications: list[dict]) -> dict:
    """The alert for sharing applications whose statutory clock ran out (``overdue_report`` rows)."""
    return {
        "alert": "overdue_applications",
        "message": f"{len(applications)} sharing application(s) past their statutory clock (docs/SHARING.md)",
        "applications": [
            {
                k: a.get(k)
                for k in (
                    "application_id",
                    "resource_code",
                    "tier",
                    "status",
                    "provider",
                    "due_on",
                    "days_late",
                )
            }
            for a in sorted(applications, key=lambda a: (a["due_on"], a["application_id"]))
        ],  # fmt: skip
        "detected_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def minimal_failure_alert(run: DagsterRun, problem: str) -> dict:
    """The alert when the run's event log could not be read: same fields, details missing."""
    return {
        "alert": "run_failure",
        "job": run.job_name,
        "run_id": run.run_id,
        "partition": _partition(run.tags),
        "message": None,
        "error": f"details unavailable ({problem})",
        "failed_steps": [],
        "failed_blocking_checks": [],
        "run_path": f"/runs/{run.run_id}",
        "failed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "tags": {k: run.tags[k] for k in RUN_TAGS if k in run.tags},
    }


def alert_text(payload: dict) -> str:
    """One readable paragraph for logs."""
    if payload.get("alert") == "overdue_applications":
        lines = [f"OVERDUE APPLICATIONS: {payload['message']}"]
        for a in payload["applications"]:
            lines.append(
                f"  #{a['application_id']} {a['resource_code']} ({a['tier']}, {a['status']}, provider "
                f"{a['provider']}): due {a['due_on']}, {a['days_late']} day(s) late"
            )
        return "\n".join(lines)
    if payload.get("alert") == "stale_tables":
        lines = [
            f"STALE TABLES: job {payload['job']} run {payload['run_id']}"
            + (f" partition {payload['partition']}" if payload.get("partition") else "")
            + f" ({payload['run_path']}): {payload['message']}"
        ]
        for table in payload["stale_tables"]:
            days = f" days {', '.join(table['held_days'])}" if table["held_days"] else ""
            scope = "whole table" if table["whole"] else "some days"
            lines.append(
                f"  {table['table']} ({scope}{days}, since {table['stale_since']}): {table['reason']}"
            )
        return "\n".join(lines)
    lines = [
        f"RUN FAILED: job {payload['job']} run {payload['run_id']}"
        + (f" partition {payload['partition']}" if payload.get("partition") else "")
        + f" ({payload['run_path']})"
    ]
    for step in payload["failed_steps"]:
        lines.append(f"  step {step['step']}: {step['error']}")
    for check in payload["failed_blocking_checks"]:
        lines.append(f"  blocking check {check['asset']}:{check['check']} failed: {check['description']}")
    if not payload["failed_steps"]:
        lines.append(f"  {payload['error']}")
    return "\n".join(lines)


def _retryable(response: requests.Response) -> bool:
    return response.status_code == 429 or response.status_code >= 500


def send_alert(
    payload: dict,
    url: str | None = None,
    log: logging.Logger | None = None,
    timeout: float = TIMEOUT_SECONDS,
    attempts: int = ATTEMPTS,
) -> bool:
    """Log the alert and, if a webhook URL is given or set in the environment, POST it as JSON.

    True if the webhook accepted it (2xx). Never raises."""
    loggers = [LOG] + ([log] if log is not None and log is not LOG else [])

    def emit(level: int, message: str) -> None:
        for logger in loggers:
            logger.log(level, message)

    emit(logging.ERROR, alert_text(payload))
    url = url or os.environ.get(ALERT_WEBHOOK_ENV)
    if not url:
        emit(logging.INFO, f"{ALERT_WEBHOOK_ENV} is not set: the alert is only logged")
        return False
    body = json.dumps(payload, ensure_ascii=False, default=str).encode("utf-8")
    headers = {"Content-Type": "application/json; charset=utf-8"}
    problem = "not sent"
    for attempt in range(1, attempts + 1):
        try:
            response = requests.post(url, data=body, headers=headers, timeout=timeout)
        except requests.RequestException as exc:
            problem = type(exc).__name__  # not str(exc): it quotes the URL, whose path can be a secret
        else:
            if response.ok:
                emit(
                    logging.INFO,
                    f"alert {payload['alert']}"
                    + (f" for run {payload['run_id']}" if payload.get("run_id") else "")
                    + f" sent to the webhook ({response.status_code})",
                )
                return True
            problem = f"HTTP {response.status_code}: {response.text[:200]}"
            if not _retryable(response):
                break
        if attempt < attempts:
            time.sleep(RETRY_DELAY_SECONDS)
    emit(
        logging.WARNING,
        f"alert webhook failed after {attempt} attempt(s) ({problem}); the alert is only logged",
    )
    return False
