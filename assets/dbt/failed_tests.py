"""A dbt build whose error-severity tests fail: the step goes on, publication holds back what they failed on.

dagster-dbt turns each error-severity dbt test into a *blocking* asset check and fails the whole step when one
fails, which would stop every later step and so the publication of every table. Instead (as the GX gate does,
``assets/quality.py``) a failure is reported with severity WARN and recorded in ``quality.dbt_test_results``
(``citybrain/quality/dbt_tests.py``), from which publication holds back the tables built from the failing
model (``citybrain/staleness.py``). dbt itself still skips, in the same invocation, what is built from a model
whose test failed, so a snapshot never records duplicated keys; those skipped models get an output that says
they were not rebuilt (Dagster would otherwise skip every step downstream of them, publication included).
"""

from collections.abc import Iterable, Iterator

from dagster import AssetCheckResult, AssetCheckSeverity, AssetExecutionContext, MetadataValue, Output

HELD_BACK = "held back at publication: the pool tables built from this model keep their previous version"
NOT_REBUILT = "citybrain/not_rebuilt"  # metadata key on the output of a model dbt skipped


def soften_failed_tests(events: Iterable) -> Iterator:
    """The events with each failed ERROR-severity check reported as WARN (see the module docstring)."""
    for event in events:
        if (
            isinstance(event, AssetCheckResult)
            and not event.passed
            and event.severity == AssetCheckSeverity.ERROR
        ):
            metadata = {**event.metadata, "citybrain/consequence": MetadataValue.text(HELD_BACK)}
            event = event._replace(severity=AssetCheckSeverity.WARN, metadata=metadata)
        yield event


def outputs_not_built(context: AssetExecutionContext, events: list, failed_tests: list[str]) -> list[Output]:
    """An output for each selected model the build yielded none for (dbt skipped it), saying so."""
    yielded = {event.output_name for event in events if isinstance(event, Output)}
    reason = (
        "not rebuilt in this run: dbt skipped it because a test of a model it is built from failed ("
        + ", ".join(failed_tests)
        + "); the warehouse keeps its previous build and publication holds it back"
    )
    assets_def = context.assets_def
    selected = {assets_def.get_output_name_for_asset_key(key) for key in context.selected_asset_keys}
    return [  # models only: a test's result is not an output of ours
        Output(None, output_name=name, metadata={NOT_REBUILT: MetadataValue.text(reason)})
        for name in sorted(selected - yielded)
    ]
