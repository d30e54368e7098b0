"""dbt test outcomes of a run, kept in the warehouse so that publication can hold back what they fail on.

dbt tests guard structure (keys, not-null, relationships, accepted values, contracts: see
expectations/README.md). An error-severity test that fails no longer stops the night: dbt still skips what is
built from the failing model in the same invocation (so duplicated keys never reach a snapshot's history),
and publication holds back every pool table built from it (``citybrain/staleness.py``), as it does for a
failed blocking expectation. This module turns dbt's ``run_results.json`` into one row per test and dataset in
``quality.dbt_test_results`` and reads the failed ones back. The dataset of a test is the model it is attached
to (generic tests) or every model it reads (singular tests): a failed reconciliation holds all of them.

A model that dbt cannot build at all is not a finding about a delivery but a defect of code or platform: it is
reported by :func:`build_errors` and the dbt step fails, as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from citybrain.warehouse import Warehouse

RESULTS_TABLE = "dbt_test_results"  # in the quality schema, beside expectation_results
FAILED = ("fail", "error")  # dbt's statuses of a test that did not pass (warn is a warning-severity failure)

RESULTS_DDL = f"""
CREATE SCHEMA IF NOT EXISTS quality;
CREATE TABLE IF NOT EXISTS quality.{RESULTS_TABLE} (
    run_id VARCHAR NOT NULL,
    dataset VARCHAR NOT NULL,
    test VARCHAR NOT NULL,
    severity VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    failures BIGINT,
    message VARCHAR,
    evaluated_at TIMESTAMPTZ NOT NULL
);
"""


@dataclass(frozen=True)
class DbtTestOutcome:
    dataset: str  # <schema>.<table> of a model the test checks
    test: str  # the test's dbt name
    severity: str  # blocking (dbt severity error) | warning
    status: str  # dbt's: pass | fail | warn | error | skipped
    failures: int | None
    message: str | None

    @property
    def blocks(self) -> bool:
        return self.severity == "blocking" and self.status in FAILED


def _dataset(node: Mapping[str, Any]) -> str:
    return f"{node.get('schema')}.{node.get('alias') or node['name']}".lower()


def outcomes_from_run(run_results: Mapping[str, Any], manifest: Mapping[str, Any]) -> list[DbtTestOutcome]:
    """One outcome per test and dataset it checks, from a dbt invocation's run results and its manifest."""
    nodes = manifest.get("nodes", {})
    outcomes = []
    for result in run_results.get("results", []):
        node = nodes.get(result.get("unique_id", ""))
        if not node or node.get("resource_type") != "test":
            continue
        severity = str((node.get("config") or {}).get("severity") or "error").lower()
        checked = [node["attached_node"]] if node.get("attached_node") else node["depends_on"]["nodes"]
        for uid in checked:
            model = nodes.get(uid)
            if model is None:  # a source or seed read by a singular test: the models it checks carry it
                continue
            outcomes.append(
                DbtTestOutcome(
                    dataset=_dataset(model),
                    test=node["name"],
                    severity="blocking" if severity == "error" else "warning",
                    status=result.get("status") or "",
                    failures=result.get("failures"),
                    message=result.get("message"),
                )
            )
    return outcomes


def build_errors(run_results: Mapping[str, Any]) -> list[str]:
    """Nodes other than tests that dbt could not build (model, snapshot, seed errors), with dbt's message."""
    return [
        f"{r['unique_id']}: {r.get('message') or 'error'}"
        for r in run_results.get("results", [])
        if not r.get("unique_id", "").startswith("test.") and r.get("status") == "error"
    ]


def record(
    warehouse: Warehouse, run_id: str, outcomes: Iterable[DbtTestOutcome], locked: bool = False
) -> None:
    """Append the run's outcomes. ``locked``: the caller holds the writer lock (the dbt step does)."""
    now = datetime.now(UTC)
    rows = [
        (run_id, o.dataset, o.test, o.severity, o.status, o.failures, o.message, now)
        for o in outcomes
        if o.status != "skipped"  # not run: the failure that skipped it is recorded where it happened
    ]
    with warehouse.connect(locked=not locked) as con:
        con.execute(RESULTS_DDL)
        if rows:
            con.executemany(f"INSERT INTO quality.{RESULTS_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)


def failed_datasets(con, run_id: str, schema: str = "quality") -> dict[str, list[str]]:
    """Dataset -> the blocking dbt tests that failed on it in the run (none when the table does not exist)."""
    database = schema.rsplit(".", 1)[0] if "." in schema else None  # "warehouse.quality": attached
    (exists,) = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'quality' AND table_name = ? "
        "AND database_name = coalesce(?, current_database())",
        [RESULTS_TABLE, database],
    ).fetchone()
    if not exists:
        return {}
    rows = con.execute(
        f"SELECT DISTINCT dataset, test FROM {schema}.{RESULTS_TABLE} "
        f"WHERE run_id = ? AND severity = 'blocking' AND status IN {FAILED}",
        [run_id],
    ).fetchall()
    failed: dict[str, list[str]] = {}
    for dataset, test in sorted(rows):
        failed.setdefault(dataset, []).append(test)
    return failed
