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
"""

from __future__ import annotations

import fcntl
import time
from contextlib import contextmanager
from pathlib import Path

from citybrain import settings

SITE = "local_site"
INDEX_LIMIT = 400  # results on the index page, newest first: two weeks of nightly runs (older pages stay)


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
