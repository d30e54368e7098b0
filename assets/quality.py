"""Great Expectations suites as Dagster asset checks: the quality gate in front of publication.

Each dataset with a suite in ``expectations/`` gets two checks: ``gx_blocking`` and ``gx_warnings``.
``gx_blocking`` is a Dagster blocking check, so the steps downstream of a dataset wait for it, but a failure
does not stop them: it holds back, at publication, the pool tables built from that dataset, which keep their
previous version and are marked stale (``citybrain/staleness.py``: publication per table, not all or
nothing). Dagster would skip every later step, the whole pool's publication included, on a failed blocking
check of severity ERROR, so the failure is reported with severity WARN and says what it holds back; the
decision is taken from ``quality.expectation_results``, where the expectation keeps severity ``blocking``.
``gx_warnings`` reports and never holds anything back. One check per suite and severity rather than one per expectation: a suite is one
GX validation per partition, the asset page stays readable next to the dbt tests, and the check's
metadata lists each failed expectation with its unexpected count and examples while Data Docs hold
every detail.

One check step per step that produces the datasets (all raw feeds; each dbt step), so GX starts once
per step and a step's checks can block the next step without a cycle. A check step goes before any other
step that is ready at the same time (``CHECK_STEP_TAGS``): the daily dbt step does not wait for the pool's
checks, and without the priority the two check steps ran back to back, the second waiting for the first's
Data Docs (citybrain/quality/data_docs.py), instead of each rendering while a dbt step runs.
"""

from collections import defaultdict
from datetime import date, timedelta

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    MetadataValue,
    multi_asset_check,
)

from assets.resources import WarehouseResource
from citybrain.quality.suites import SuiteSpec, load_suites
from citybrain.warehouse import Warehouse

# Dagster's executors start the ready step with the highest ``dagster/priority`` first (default 0).
CHECK_STEP_TAGS = {"dagster/priority": "1"}
BLOCKING_CHECK = "gx_blocking"
WARNING_CHECK = "gx_warnings"
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def build_quality_checks(asset_definitions: list) -> list:
    """One multi-asset check per producing step, covering the suites of the datasets it produces."""
    producers = {}
    for definition in asset_definitions:
        for key in definition.keys:
            producers[key] = "raw" if key.path[0] == "raw" else definition.node_def.name
    groups: dict[str, list[SuiteSpec]] = defaultdict(list)
    for suite in load_suites():
        key = AssetKey(suite.asset_path)
        if key not in producers:
            raise ValueError(f"{suite.path}: no asset {key.to_user_string()} for suite {suite.dataset}")
        groups[producers[key]].append(suite)
    return [_check_step(name, suites) for name, suites in sorted(groups.items())]


def _check_step(producer: str, suites: list[SuiteSpec]):
    by_key = {AssetKey(s.asset_path): s for s in suites}
    specs = []
    for key, suite in by_key.items():
        specs.append(
            AssetCheckSpec(
                BLOCKING_CHECK,
                asset=key,
                blocking=True,
                description=f"Blocking expectations of suite {suite.dataset} ({suite_file(suite)}).",
            )
        )
        specs.append(
            AssetCheckSpec(
                WARNING_CHECK,
                asset=key,
                description=f"Warning expectations of suite {suite.dataset}: reported, never blocking.",
            )
        )

    @multi_asset_check(
        specs=specs,
        name=f"gx_{producer}",
        can_subset=True,
        compute_kind="great_expectations",
        op_tags=CHECK_STEP_TAGS,
    )
    def gx_checks(context: AssetCheckExecutionContext, warehouse: WarehouseResource):
        from citybrain.quality.data_docs import data_docs_index, update_data_docs_soon, wait_for_data_docs
        from citybrain.quality.validate import record_outcomes, validate_suites

        for failure in wait_for_data_docs():  # one Great Expectations user at a time (data_docs.py)
            context.log.warning(f"Data Docs of an earlier check step not updated: {failure}")
        selected = {check_key.asset_key for check_key in context.selected_asset_check_keys}
        chosen = [s for key, s in by_key.items() if key in selected]
        store = warehouse.warehouse()
        days = run_days(context.run.tags)
        runs = validate_suites(store, [(s, _partitions(s, days, store)) for s in chosen])
        run_id = context.run.run_id
        record_outcomes(store, run_id, runs)
        for suite in chosen:
            yield from _results(suite, [r for r in runs if r.suite is suite], data_docs_index(), context)
        # After the results: a background update (data_docs.py) is pure Python, and would hold the GIL
        # half the time while this step writes its check events.
        update_data_docs_soon(run_id, runs)

    return gx_checks


def suite_file(suite: SuiteSpec) -> str:
    return f"expectations/{suite.path.parent.name}/{suite.path.name}"


def run_days(tags) -> list[str]:
    """The partition days of the run (single partition or range); empty for an unpartitioned run."""
    if tags.get("dagster/partition"):
        return [tags["dagster/partition"]]
    if tags.get(RANGE_START) and tags.get(RANGE_END):
        first, last = date.fromisoformat(tags[RANGE_START]), date.fromisoformat(tags[RANGE_END])
        return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
    return []


def _partitions(suite: SuiteSpec, days: list[str], warehouse: Warehouse) -> list[str | None]:
    """Partitioned datasets are validated one partition at a time: the run's days, else the latest."""
    if suite.partition is None:
        return [None]
    if days:
        return days
    with warehouse.connect(read_only=True) as con:
        (latest,) = con.execute(
            f'SELECT max("{suite.partition.column}")::VARCHAR FROM "{suite.schema_name}"."{suite.table_name}"'
        ).fetchone()
    return [latest]


def _results(suite: SuiteSpec, runs: list, docs, context):
    key = AssetKey(suite.asset_path)
    for check, severity in ((BLOCKING_CHECK, "blocking"), (WARNING_CHECK, "warning")):
        if AssetCheckKey(key, check) not in context.selected_asset_check_keys:
            continue
        outcomes = [o for r in runs for o in r.outcomes if o.severity == severity]
        failed = [o for o in outcomes if not o.success]
        yield AssetCheckResult(
            asset_key=key,
            check_name=check,
            passed=not failed,
            severity=AssetCheckSeverity.WARN,  # never ERROR: see the module docstring
            description=_summary(suite, outcomes, failed, severity),
            metadata={
                "suite": suite.dataset,
                "suite_file": suite_file(suite),
                "partitions": MetadataValue.json([r.partition for r in runs]),
                "expectations_evaluated": len(outcomes),
                "expectations_passed": len(outcomes) - len(failed),
                "unexpected_total": sum(o.unexpected_count or 0 for o in failed),
                "failed": MetadataValue.json([_failure(o) for o in failed]),
                "data_docs": MetadataValue.path(str(docs)),
            },
        )


def _summary(suite: SuiteSpec, outcomes: list, failed: list, severity: str) -> str:
    if not failed:
        return f"{len(outcomes)} expectations of {suite.dataset} passed."
    names = ", ".join(sorted({f"{o.rule}({o.column})" if o.column else o.rule for o in failed}))
    held = (
        " The pool tables built from it are held back at publication (previous version kept, marked stale)."
        if severity == "blocking"
        else ""
    )
    return f"{len(failed)} of {len(outcomes)} expectations of {suite.dataset} failed: {names}.{held}"


def _failure(outcome) -> dict:
    return {
        "expectation": outcome.rule
        if outcome.rule == outcome.expectation
        else f"{outcome.rule} -> {outcome.expectation}",
        "column": outcome.column,
        "partition": outcome.partition,
        "unexpected_count": outcome.unexpected_count,
        "observed": outcome.observed,
        "examples": outcome.examples,
        "error": outcome.error,
    }
