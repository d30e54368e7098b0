"""GX Data Docs: a browsable site of every suite and every validation, updated after each check step.

Validation runs in an ephemeral GX context (nothing accumulates in a project file); the suites and
their results are then written to a file-backed GX project under ``$CITYBRAIN_HOME/quality/gx``
and the site is updated there. Check steps of one run may run in parallel processes, so the project
is updated under a file lock.

Only the pages of the step's own suites and results are rendered, and the index lists the newest
``INDEX_LIMIT`` results: GX's default (render every stored result, and read all of them for the index)
costs a little more every night, forever — a year of nightly runs is some 11,000 results.

The pages built in a step are then pointed at vendored copies of the CDN files GX links
(``docs_assets.localize_site``), so the site renders offline.

Rendering is pure Python (Jinja pages, JSON stores): about 6 s of a 1M-resident night, spent while no
other work runs. A run executed in one process (``citybrain run``) therefore updates the site in a
background thread (``defer_updates``) while the next steps go on: the dbt steps after a check step run
in a dbt process and leave this process idle. Only one Great Expectations user at a time: each check
step first waits for the previous step's update (``wait_for_data_docs``), and the run waits for the last
one before it ends. Check steps go first among the steps ready together (assets/quality.py), so a dbt
step, not another check step, follows a check step whenever the job allows. A failed update never
changes a check's outcome (the checks are recorded before); it is reported by the next check step's log
and by the run's summary. Step processes of launched runs update synchronously, as before: the process
ends with its step.
"""

from __future__ import annotations

import fcntl
import logging
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from citybrain import settings

SITE = "local_site"
INDEX_LIMIT = 400  # results on the index page, newest first: two weeks of nightly runs (older pages stay)

log = logging.getLogger(__name__)
_deferred = False
_pending: threading.Thread | None = None
_failures: list[str] = []


def gx_project_dir() -> Path:
    return settings.home() / "quality" / "gx"


def data_docs_index() -> Path:
    return gx_project_dir() / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"


@contextmanager
def _project_lock():
    path = gx_project_dir()
    path.mkdir(parents=True, exist_ok=True)
    with open(path.parent / "gx.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def defer_updates(enabled: bool) -> None:
    """From now on, ``update_data_docs_soon`` renders in a background thread (True) or at once (False).
    For a process that runs a whole job; it must call ``wait_for_data_docs`` before it ends."""
    global _deferred
    _deferred = enabled


def update_data_docs_soon(run_id: str, runs: list) -> Path:
    """``update_data_docs`` now, or in the background when updates are deferred. Returns the index page,
    where the results will be once the update is done."""
    global _pending
    if not _deferred:
        return update_data_docs(run_id, runs)
    _join_pending()  # keeps its failure for wait_for_data_docs

    def update() -> None:
        try:
            update_data_docs(run_id, runs)
        except Exception as exc:  # noqa: BLE001 - reported by the next check step and the run's end
            log.warning("Data Docs not updated for run %s", run_id, exc_info=True)
            _failures.append(f"{', '.join(sorted({r.suite.dataset for r in runs}))}: {exc!r}")

    _pending = threading.Thread(target=update, name="data-docs", daemon=True)
    _pending.start()
    return data_docs_index()


def wait_for_data_docs() -> list[str]:
    """Wait for a background update; the failures of the updates since the last call (and forget them)."""
    _join_pending()
    failures = list(_failures)
    _failures.clear()
    return failures


def _join_pending() -> None:
    global _pending
    if _pending is not None:
        _pending.join()
        _pending = None


def update_data_docs(run_id: str, runs: list) -> Path:
    """Store the suites and validation results of ``runs`` (validate.SuiteRun) and rebuild the site."""
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    import citybrain.quality.one_scan  # noqa: F401  registers the expectation type the stored suites use

    with _project_lock():
        context = gx.get_context(mode="file", project_root_dir=str(gx_project_dir()))
        stored, rendered = set(), []
        for run in runs:
            name = run.suite.dataset
            if name not in stored:  # the suite as last evaluated (run-time values filled in)
                context.suites.add_or_update(
                    gx.ExpectationSuite(name=name, expectations=[e.copy() for e in run.gx_expectations])
                )
                stored.add(name)
            key = ValidationResultIdentifier(
                expectation_suite_identifier=ExpectationSuiteIdentifier(name=name),
                run_id=RunIdentifier(run_name=run_id),
                batch_identifier=run.partition or "whole_table",
            )
            context.validation_results_store.set(key, run.gx_result)
            rendered.append(key)
        _bound_index(context)
        suites = [ExpectationSuiteIdentifier(name=name) for name in sorted(stored)]
        started = time.time()
        context.build_data_docs(site_names=[SITE], resource_identifiers=[*suites, *rendered])
        _localize(started)
    return data_docs_index()


def _localize(started: float) -> None:
    """Point the pages this build wrote (by modification time, a second of slack) at the vendored assets."""
    from citybrain.quality.docs_assets import localize_site

    site = data_docs_index().parent
    pages = [p for p in site.rglob("*.html") if p.stat().st_mtime >= started - 1]
    localize_site(site, pages)


def _bound_index(context) -> None:
    """Cap the results the index page lists (and so reads) at INDEX_LIMIT, once per project."""
    site = context.list_data_docs_sites()[SITE]
    index = site.setdefault("site_index_builder", {"class_name": "DefaultSiteIndexBuilder"})
    if index.get("validation_results_limit") != INDEX_LIMIT:
        index["validation_results_limit"] = INDEX_LIMIT
        context.update_data_docs_site(SITE, site)
