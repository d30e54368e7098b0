"""An unexpected-rows expectation that runs its query once: count and examples from one scan.

GX's ``UnexpectedRowsExpectation`` resolves two metrics, each a query of its own over the batch: the
number of unexpected rows (``SELECT COUNT(*) FROM (query)``) and up to 200 of the rows themselves
(``query``, fetched). Every row rule of every suite therefore scanned its batch twice, and a third
time when it failed, to keep a few example rows for the outcome (the SUMMARY result format drops the
rows). Rules that call a Python function per row (the resident ID check of ``citybrain_valid_share``)
paid for it twice over: at one million residents that was some 25 seconds of a night.

:class:`OneScanUnexpectedRowsExpectation` is the same expectation (the same ``unexpected_rows_query``
with ``{batch}``, the same renderers, success when the query returns no row) resolved through one
metric, :class:`UnexpectedRowsSummary`, whose single query returns the count and ``EXAMPLES`` rows
together (DuckDB's ``max_by(row, 0, n)``: any n rows, kept in bounded memory however many there are).
Suite files keep writing ``unexpected_rows_expectation``; ``suites.py`` builds this class for it.

Importing the module registers the metric and the expectation type with GX, so it must be imported
wherever suites are built or their stored results are read back (``suites.py`` and ``unexpected_rows.py``
import it when they build an expectation, ``data_docs.py`` before it reads the GX project).
"""

from __future__ import annotations

from typing import Any, ClassVar

from great_expectations.compatibility.sqlalchemy import sqlalchemy as sa
from great_expectations.core.metric_domain_types import MetricDomainTypes
from great_expectations.execution_engine import SqlAlchemyExecutionEngine
from great_expectations.expectations import UnexpectedRowsExpectation
from great_expectations.expectations.metrics.metric_provider import metric_value
from great_expectations.expectations.metrics.query_metric_provider import QueryMetricProvider

from citybrain.quality import EXAMPLES

SUMMARY_METRIC = "citybrain_unexpected_rows.summary"


class UnexpectedRowsSummary(QueryMetricProvider):
    """``{"unexpected_count": n, "examples": [row, ...]}`` of an unexpected-rows query, in one query."""

    metric_name = SUMMARY_METRIC
    value_keys = ("unexpected_rows_query",)
    query_param_name: ClassVar[str] = "unexpected_rows_query"

    @metric_value(engine=SqlAlchemyExecutionEngine)
    def _sqlalchemy(
        cls,
        execution_engine: SqlAlchemyExecutionEngine,
        metric_domain_kwargs: dict,
        metric_value_kwargs: dict,
        metrics: dict[str, Any],
        runtime_configuration: dict,
    ) -> dict:
        batch_selectable, _, _ = execution_engine.get_compute_domain(
            metric_domain_kwargs, domain_type=MetricDomainTypes.TABLE
        )
        query = cls._get_substituted_batch_subquery_from_query_and_batch_selectable(
            query=cls._get_query_from_metric_value_kwargs(metric_value_kwargs),
            batch_selectable=batch_selectable,
            execution_engine=execution_engine,
        )
        count, examples = execution_engine.execute_query(
            sa.text(
                f"SELECT count(*) AS unexpected_count, max_by(unexpected, 0, {int(EXAMPLES)}) AS examples "
                f"FROM ({query}) AS unexpected"
            )
        ).fetchone()
        return {"unexpected_count": int(count), "examples": [dict(row) for row in examples or []]}


class OneScanUnexpectedRowsExpectation(UnexpectedRowsExpectation):
    """The unexpected-rows expectation, its count and example rows from one query (see the module)."""

    metric_dependencies: ClassVar[tuple[str, ...]] = (SUMMARY_METRIC,)

    def _validate(
        self,
        metrics: dict,
        runtime_configuration: dict | None = None,
        execution_engine=None,
    ) -> dict:
        summary = metrics[SUMMARY_METRIC]
        count = summary["unexpected_count"]
        return {
            "success": count == 0,
            "result": {"observed_value": count, "details": {"unexpected_rows": summary["examples"]}},
        }
