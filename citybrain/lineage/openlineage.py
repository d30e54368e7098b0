"""Each publication's lineage as OpenLineage events, for a city's own catalog (DataHub, Marquez, OpenMetadata).

Off unless ``CITYBRAIN_OPENLINEAGE_URL`` names an OpenLineage HTTP endpoint (``CITYBRAIN_OPENLINEAGE_ENDPOINT``,
default ``api/v1/lineage``; ``CITYBRAIN_OPENLINEAGE_NAMESPACE``, default ``citybrain``). A run that publishes
sends START and then COMPLETE: its inputs are the raw feeds (with the deliveries read: file and SHA-256), its
outputs the published pool tables (schema, published version, row count, and the column-level lineage dbt's
compiled SQL shows: which raw columns each published column is derived from, unmasked). A refused publication
sends FAIL. The events are built with the maintained ``openlineage-python`` client; a catalog that is down
never fails the publication (the caller logs the error).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import attr
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    DatasetFacet,
    column_lineage_dataset,
    dataset_version_dataset,
    documentation_dataset,
    output_statistics_output_dataset,
    schema_dataset,
)
from openlineage.client.transport.http import HttpConfig, HttpTransport

URL_ENV = "CITYBRAIN_OPENLINEAGE_URL"
ENDPOINT_ENV = "CITYBRAIN_OPENLINEAGE_ENDPOINT"
NAMESPACE_ENV = "CITYBRAIN_OPENLINEAGE_NAMESPACE"
PRODUCER = "https://github.com/citybrain-lake/citybrain-lake"


@attr.define
class DeliveriesDatasetFacet(DatasetFacet):
    """The deliveries of a raw feed a publication was built from (citybrain's own facet)."""

    deliveries: list[dict] = attr.field(factory=list)

    @staticmethod
    def _get_schema() -> str:
        return PRODUCER + "/blob/main/docs/GOVERNANCE.md#openlineage"


def configured() -> bool:
    return bool(os.environ.get(URL_ENV))


def client() -> OpenLineageClient:
    config = HttpConfig(url=os.environ[URL_ENV], endpoint=os.environ.get(ENDPOINT_ENV) or "api/v1/lineage")
    return OpenLineageClient(transport=HttpTransport(config))


def namespace() -> str:
    return os.environ.get(NAMESPACE_ENV) or "citybrain"


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _event(state, run_id: str, job_name: str, inputs=(), outputs=(), when: str | None = None) -> RunEvent:
    return RunEvent(
        eventType=state,
        eventTime=when or _now(),
        run=Run(runId=run_id),
        job=Job(namespace=namespace(), name=job_name),
        producer=PRODUCER,
        inputs=list(inputs),
        outputs=list(outputs),
    )


def publication_events(
    run_id: str,
    job_name: str,
    version: str,
    table_rows: Mapping[str, int],
    lineage: list[dict],
    manifest: Mapping[str, Any],
    column_origins: Mapping[str, Mapping[str, list[tuple[str, str]]]] | None = None,
    started_at: str | None = None,
) -> list[RunEvent]:
    """START and COMPLETE of one publishing run. ``table_rows``: "pool.<table>" -> rows published;
    ``lineage``: meta.table_lineage rows (table_name, feed_id, source_file, file_sha256, loaded_by_run);
    ``column_origins``: table -> column -> [(raw relation, column)]."""
    ns = namespace()
    deliveries: dict[str, dict[tuple, dict]] = {}
    for row in lineage:
        key = (row["source_file"], row["file_sha256"])
        deliveries.setdefault(row["feed_id"], {})[key] = {
            "file": row["source_file"],
            "sha256": row["file_sha256"],
            "loaded_by_run": row["loaded_by_run"],
        }
    inputs = [
        InputDataset(
            namespace=ns,
            name=f"raw.{feed}",
            facets={"citybrain_deliveries": DeliveriesDatasetFacet(deliveries=list(found.values()))},
        )
        for feed, found in sorted(deliveries.items())
    ]
    models = {
        (n.get("alias") or n["name"]): n
        for n in manifest.get("nodes", {}).values()
        if n.get("resource_type") == "model"
    }
    outputs = []
    for qualified, rows in sorted(table_rows.items()):
        table = qualified.split(".", 1)[1]
        node = models.get(table, {})
        facets: dict[str, Any] = {
            "schema": schema_dataset.SchemaDatasetFacet(
                fields=[
                    schema_dataset.SchemaDatasetFacetFields(
                        name=c, type=spec.get("data_type"), description=spec.get("description")
                    )
                    for c, spec in (node.get("columns") or {}).items()
                ]
            ),
            "version": dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=version),
        }
        if node.get("description"):
            facets["documentation"] = documentation_dataset.DocumentationDatasetFacet(
                description=node["description"]
            )
        origins = (column_origins or {}).get(table)
        if origins:
            facets["columnLineage"] = column_lineage_dataset.ColumnLineageDatasetFacet(
                fields={
                    column: column_lineage_dataset.Fields(
                        inputFields=[
                            column_lineage_dataset.InputField(namespace=ns, name=relation, field=source)
                            for relation, source in sorted(sources)
                        ]
                    )
                    for column, sources in sorted(origins.items())
                    if sources
                }
            )
        outputs.append(
            OutputDataset(
                namespace=ns,
                name=qualified,
                facets=facets,
                outputFacets={
                    "outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                        rowCount=rows
                    )
                },
            )
        )
    return [
        _event(RunState.START, run_id, job_name, when=started_at),
        _event(RunState.COMPLETE, run_id, job_name, inputs, outputs),
    ]


def failure_events(run_id: str, job_name: str, started_at: str | None = None) -> list[RunEvent]:
    return [
        _event(RunState.START, run_id, job_name, when=started_at),
        _event(RunState.FAIL, run_id, job_name),
    ]


def emit(events: list[RunEvent]) -> None:
    lineage_client = client()
    for event in events:
        lineage_client.emit(event)
