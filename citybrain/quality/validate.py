"""Run expectation suites in-database against the warehouse, one partition at a time.

The outcome of every expectation is kept twice: as the GX validation result (for Data Docs) and as a
flat :class:`Outcome` that the Dagster checks, the ``quality.expectation_results`` table and the
scorecards read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import duckdb

from citybrain import dbt_paths, settings
from citybrain.catalog import load_catalog
from citybrain.ingest.warehouse import LINEAGE_COLUMNS
from citybrain.quality import EXAMPLES
from citybrain.quality.suites import RunValues, SuiteSpec, gx_expectations
from citybrain.warehouse import Warehouse

# Expectations whose observed value is their number of unexpected rows (GX's, and ours run in one scan).
ROW_QUERY_TYPES = ("unexpected_rows_expectation", "one_scan_unexpected_rows_expectation")


@dataclass
class Outcome:
    suite: str
    partition: str | None
    expectation: str  # GX type
    rule: str  # the suite file's entry (a GX type or a citybrain_* rule)
    column: str | None
    severity: str  # blocking | warning
    success: bool
    unexpected_count: int | None
    observed: str | None
    examples: list = field(default_factory=list)
    error: str | None = None
    description: str | None = None


@dataclass
class SuiteRun:
    suite: SuiteSpec
    partition: str | None
    outcomes: list[Outcome]
    gx_result: object  # ExpectationSuiteValidationResult
    gx_expectations: list

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.success]


LANES = 2
"""Suites validated side by side, each lane a thread with a DuckDB connection of its own. GX's work per
expectation (its metric graph, the results) is Python and holds the GIL; DuckDB runs a query without it,
so one lane's queries run while the other builds its graph. Most of a small suite's time is GX's, most of
a large table's the queries."""
ROWS_PER_SUITE_OVERHEAD = 200_000
"""How many rows a suite's scan takes to cost what GX's fixed work per suite costs (~0.1-0.2 s at 1M
residents): the weight of a table's size in the split of suites between lanes."""


def validate_suites(
    warehouse: Warehouse | Path, suites: Iterable[tuple[SuiteSpec, list[str | None]]], lanes: int = LANES
) -> list[SuiteRun]:
    """Validate each suite on each of its partitions (``None`` = the whole table), read-only, in ``lanes``
    threads; the runs come back in the order of ``suites``.

    Holds the warehouse lock meanwhile: DuckDB refuses a read-only connection while a writer has the file.
    """
    from citybrain.quality.gx_duckdb import warehouse_lanes

    store = _warehouse(warehouse)
    with store.lock():
        with store.connect(read_only=True, locked=False) as con:  # closed before GX opens the file
            planned = []
            for suite, partitions in suites:
                for partition in partitions:
                    values = run_values(con, suite, partition)
                    planned.append((suite, partition, gx_expectations(suite, values, partition), values))
            costs = _costs(con, planned)
        if not planned:
            return []
        with warehouse_lanes(store, max(1, min(lanes, len(planned)))) as datasources:
            lane_of = _split(costs, len(datasources))
            # Every batch before any thread starts: adding one changes the GX context (gx_duckdb.py).
            batches = [
                datasources[lane].batch(batch_query(suite, partition))
                for (suite, partition, _, _), lane in zip(planned, lane_of, strict=True)
            ]
            return _run_lanes(planned, batches, lane_of, len(datasources))


def _costs(con: duckdb.DuckDBPyConnection, planned: list) -> list[float]:
    """A guess of each validation's cost, for the split between lanes: a fixed part for GX's own work, and
    the rows judged (a partition's: the previous partition's count; a table's: DuckDB's estimate)."""
    sizes = {
        (schema, table): rows or 0
        for schema, table, rows in con.execute(
            "SELECT schema_name, table_name, estimated_size FROM duckdb_tables()"
        ).fetchall()
    }
    costs = []
    for suite, partition, _, values in planned:
        if partition is not None and values.trailing_counts:
            rows = values.trailing_counts[0]
        else:
            rows = sizes.get((suite.schema_name, suite.table_name), 0)
        costs.append(1.0 + rows / ROWS_PER_SUITE_OVERHEAD)
    return costs


def _split(costs: list[float], lanes: int) -> list[int]:
    """The lane of each validation: the costliest first, each to the lane with the least so far."""
    loads = [0.0] * lanes
    lane_of = [0] * len(costs)
    for index in sorted(range(len(costs)), key=lambda i: -costs[i]):
        lane = loads.index(min(loads))
        lane_of[index] = lane
        loads[lane] += costs[index]
    return lane_of


def _run_lanes(planned: list, batches: list, lane_of: list[int], lanes: int) -> list[SuiteRun]:
    """Each lane's validations in a thread of its own (in this thread when there is one lane)."""
    runs: list[SuiteRun | None] = [None] * len(planned)

    def run_lane(lane: int) -> None:
        for index, (suite, partition, expectations, _) in enumerate(planned):
            if lane_of[index] == lane:
                runs[index] = _validate(batches[index], suite, partition, expectations)

    if lanes == 1:
        run_lane(0)
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=lanes, thread_name_prefix="gx-lane") as pool:
            for future in [pool.submit(run_lane, lane) for lane in range(lanes)]:
                future.result()  # the first lane's error, if any, once every lane has stopped
    return runs


def _validate(batch, suite: SuiteSpec, partition: str | None, expectations: list) -> SuiteRun:
    import great_expectations as gx

    gx_suite = gx.ExpectationSuite(name=suite.dataset, expectations=expectations)
    result = batch.validate(
        gx_suite, result_format={"result_format": "SUMMARY", "partial_unexpected_count": EXAMPLES}
    )
    outcomes = [_outcome(suite, partition, r) for r in result.results]
    return SuiteRun(suite, partition, outcomes, result, expectations)


def batch_query(suite: SuiteSpec, partition: str | None) -> str:
    """The rows a suite judges: one partition of a daily table; an unpartitioned raw table's latest
    delivery (``latest_delivery``); any other table whole."""
    table = f'"{suite.schema_name}"."{suite.table_name}"'
    if suite.partition is None and suite.schema_name == "raw":
        return f"SELECT * FROM {table} WHERE _batch_id = ({latest_delivery(suite.table_name)})"
    if suite.partition is None or partition is None:
        return f"SELECT * FROM {table}"
    return f"SELECT * FROM {table} WHERE {_partition_predicate(suite, partition)}"


def latest_delivery(feed_id: str) -> str:
    """SQL for the batch of the latest run that loaded rows of an unpartitioned feed. Its raw table is
    judged on those rows: a database feed's table keeps every version ever read, and judged whole it would
    cost more every night and fail every night for one old bad delivery (a record updated twice is two
    rows of history, not a repeated key); a full snapshot's table holds only its latest delivery anyway.
    A quiet night (a read that found nothing new) judges the last delivery again."""
    literal = feed_id.replace("'", "''")
    return (
        f"SELECT batch_id FROM raw.ingestion_log WHERE feed_id = '{literal}' AND status = 'loaded' "
        "AND rows_loaded > 0 ORDER BY finished_at DESC LIMIT 1"
    )


def _partition_predicate(suite: SuiteSpec, partition: str, operator: str = "=") -> str:
    column = f'"{suite.partition.column}"'
    literal = partition.replace("'", "''")
    # Compare in the column's own type so DuckDB can prune by min/max (no cast on the column).
    return f"{column} {operator} CAST('{literal}' AS {_column_type(suite, suite.partition.column)})"


def _outcome(suite: SuiteSpec, partition: str | None, r) -> Outcome:
    config = r.expectation_config
    meta = config.meta or {}
    result = r.result or {}
    examples = result.get("partial_unexpected_list") or result.get("details", {}).get("unexpected_rows") or []
    error = None
    info = r.exception_info or {}
    if info.get("raised_exception"):
        error = info.get("exception_message")
    else:
        messages = [
            v.get("exception_message")
            for v in info.values()
            if isinstance(v, dict) and v.get("raised_exception")
        ]
        error = messages[0] if messages else None
    unexpected = result.get("unexpected_count")
    observed = result.get("observed_value")
    if unexpected is None and config.type in ROW_QUERY_TYPES:
        unexpected = observed
    return Outcome(
        suite=suite.dataset,
        partition=partition,
        expectation=config.type,
        rule=meta.get("rule", config.type),
        column=config.kwargs.get("column"),
        severity=meta.get("severity", "blocking"),
        success=bool(r.success) and error is None,
        unexpected_count=int(unexpected) if isinstance(unexpected, (int, float)) else None,
        observed=None if observed is None else json.dumps(observed, ensure_ascii=False, default=str)[:500],
        examples=[_jsonable(e) for e in examples[:EXAMPLES]],
        error=error,
        description=config.description or getattr(config, "notes", None),
    )


def _jsonable(value):
    return json.loads(json.dumps(value, ensure_ascii=False, default=str))


# --- run-time values -----------------------------------------------------------------------------


def run_values(con: duckdb.DuckDBPyConnection, suite: SuiteSpec, partition: str | None) -> RunValues:
    counties = _city_counties()
    trailing = []
    if suite.partition is not None and partition is not None:
        column = f'"{suite.partition.column}"'
        trailing = [
            row[1]
            for row in con.execute(
                f'SELECT {column}, count(*) FROM "{suite.schema_name}"."{suite.table_name}" '
                f"WHERE {_partition_predicate(suite, partition, '<')} GROUP BY 1 ORDER BY 1 DESC LIMIT 30"
            ).fetchall()
        ]
    return RunValues(
        dataset=suite.dataset,
        expected_columns=expected_columns(suite),
        county_codes=list(counties),
        county_extents={code: extent for code, (extent, _) in counties.items()},
        county_extent_missing={code: why for code, (extent, why) in counties.items() if extent is None},
        trailing_counts=trailing,
        quiet_day=partition is not None and _quiet_day(con, suite, partition),
    )


def prepare_run_values() -> None:
    """Read now what every suite's run values read from the lake's files (the city's county extents: about
    1.3 s, the county polygons converted to WGS-84; the catalog), not in the first check step: ``citybrain
    run`` calls this in its warm-up thread while ingestion runs (orchestration/warm_imports.py)."""
    _city_counties()
    _catalog(_file_key(settings.catalog_path()))


def _daily_feeds_of(suite: SuiteSpec) -> list:
    """The daily-partitioned catalog feeds a dataset is built from: a raw feed itself, or the raw feeds
    upstream of a dbt model (through any models and snapshots)."""
    catalog = _catalog(_file_key(settings.catalog_path()))
    if suite.schema_name == "raw":
        names: tuple[str, ...] = (suite.table_name,)
    else:
        names = _model_feeds(_file_key(dbt_paths.manifest_path())).get(suite.table_name, ())
    return [catalog.by_id[n] for n in names if n in catalog.by_id and catalog.by_id[n].is_partitioned]


@cache
def _model_feeds(key: tuple[str, float]) -> dict[str, tuple[str, ...]]:
    """Model name -> the raw feeds upstream of it, from the manifest (read once per manifest version)."""
    from citybrain.lineage.tables import upstream_feeds

    manifest = dbt_paths.read_manifest(Path(key[0]))
    return {
        node["name"]: tuple(upstream_feeds(manifest, uid))
        for uid, node in manifest["nodes"].items()
        if node["resource_type"] == "model"
    }


def _quiet_day(con: duckdb.DuckDBPyConnection, suite: SuiteSpec, partition: str) -> bool:
    """Every daily feed behind the dataset declares quiet_days and delivered ``partition`` with no records."""
    feeds = _daily_feeds_of(suite)
    if not feeds or not all(f.quiet_days for f in feeds):
        return False
    for feed in feeds:
        deliveries, rows = con.execute(
            "SELECT count(*), coalesce(sum(rows_loaded), 0) FROM raw.ingestion_log "
            "WHERE feed_id = ? AND partition_key = ? AND status = 'loaded'",
            [feed.id, partition],
        ).fetchone()
        if deliveries == 0 or rows > 0:
            return False
    return True


def _city_counties() -> dict[str, tuple[tuple[float, float, float, float] | None, str]]:
    """The configured city's current counties with the extent of their boundary polygon, from the same
    source as reference.county_boundaries (so raw feeds can be checked before, or without, the reference
    asset): code -> ((min_lng, min_lat, max_lng, max_lat) or None, why there is none)."""
    return _counties(_city_county_codes(_file_key(settings.city_config_path())))


@cache
def _city_county_codes(key: tuple[str, float]) -> tuple[str, ...]:
    from citybrain.reference.city import load_city

    return tuple(load_city(Path(key[0])).counties)


@cache
def _catalog(key: tuple[str, float]):
    """The catalog, read once per file version (every suite of a check step asks for its feeds)."""
    return load_catalog(Path(key[0]))


@cache
def _counties(codes: tuple[str, ...]) -> dict[str, tuple[tuple[float, float, float, float] | None, str]]:
    from citybrain.reference import boundaries, divisions

    out = {}
    for code in divisions.current_counties(list(codes))["code"]:
        geometry, _, reason = boundaries.county_boundary(code)
        out[str(code)] = (boundaries.bbox(geometry), "") if geometry is not None else (None, reason)
    return out


def expected_columns(suite: SuiteSpec) -> dict[str, str]:
    """The declared schema: the catalog for raw tables (all text plus lineage), the dbt contract else."""
    if suite.schema_name == "raw":
        declared = _catalog_schemas(_file_key(settings.catalog_path())).get(suite.table_name)
        if declared is None:
            raise ValueError(f"{suite.path}: no feed {suite.table_name!r} in the source catalog")
    else:
        declared = _model_schemas(_file_key(dbt_paths.manifest_path())).get(suite.table_name)
        if declared is None:
            raise ValueError(f"{suite.path}: no dbt model {suite.table_name!r} in the manifest")
    return dict(declared)


def _column_type(suite: SuiteSpec, column: str) -> str:
    return expected_columns(suite).get(column, "VARCHAR")


def _file_key(path: Path) -> tuple[str, float]:
    """Cache key of a file read for schemas: path and modification time (a changed file is reread)."""
    return str(path), path.stat().st_mtime


@cache
def _catalog_schemas(key: tuple[str, float]) -> dict[str, tuple[tuple[str, str], ...]]:
    catalog = _catalog(key)
    return {
        feed.id: tuple(
            (name, _canonical_type(kind))
            for name, kind in ({c: "VARCHAR" for c in feed.column_names} | LINEAGE_COLUMNS).items()
        )
        for feed in catalog.feeds
    }


@cache
def _model_schemas(key: tuple[str, float]) -> dict[str, tuple[tuple[str, str], ...]]:
    manifest = dbt_paths.read_manifest(Path(key[0]))
    return {
        node["name"]: tuple(
            (name, _canonical_type(column.get("data_type") or "VARCHAR"))
            for name, column in node["columns"].items()
        )
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
    }


@cache
def _canonical_type(declared: str) -> str:
    """DuckDB's own name for a declared type (``timestamptz`` -> ``TIMESTAMP WITH TIME ZONE``)."""
    return duckdb.sql(f"SELECT typeof(CAST(NULL AS {declared}))").fetchone()[0]


# --- results table -------------------------------------------------------------------------------

RESULTS_DDL = """
CREATE SCHEMA IF NOT EXISTS quality;
CREATE TABLE IF NOT EXISTS quality.expectation_results (
    run_id VARCHAR NOT NULL,
    suite VARCHAR NOT NULL,
    partition_key VARCHAR,
    expectation VARCHAR NOT NULL,
    rule VARCHAR NOT NULL,
    column_name VARCHAR,
    severity VARCHAR NOT NULL,
    success BOOLEAN NOT NULL,
    unexpected_count BIGINT,
    observed VARCHAR,
    examples JSON,
    error VARCHAR,
    evaluated_at TIMESTAMPTZ NOT NULL
);
"""


def record_outcomes(warehouse: Warehouse | Path, run_id: str, runs: list[SuiteRun]) -> None:
    """Append outcomes to ``quality.expectation_results`` (replacing this run's earlier rows of the
    same suite and partition, so a retried check step does not count twice)."""
    now = datetime.now(UTC)
    rows = [
        (
            run_id,
            o.suite,
            o.partition,
            o.expectation,
            o.rule,
            o.column,
            o.severity,
            o.success,
            o.unexpected_count,
            o.observed,
            json.dumps(o.examples, ensure_ascii=False, default=str),
            o.error,
            now,
        )
        for run in runs
        for o in run.outcomes
    ]
    with _warehouse(warehouse).connect() as con:
        con.execute("BEGIN TRANSACTION")
        con.execute(RESULTS_DDL)
        for run in runs:
            con.execute(
                "DELETE FROM quality.expectation_results WHERE run_id = ? AND suite = ? "
                "AND partition_key IS NOT DISTINCT FROM ?",
                [run_id, run.suite.dataset, run.partition],
            )
        if rows:  # one INSERT over an Arrow table of the rows (``executemany`` runs one per row)
            con.register("_outcome_rows", _outcome_table(rows))
            con.execute("INSERT INTO quality.expectation_results BY NAME SELECT * FROM _outcome_rows")
            con.unregister("_outcome_rows")
        con.execute("COMMIT")


_OUTCOME_COLUMNS = (
    ("run_id", "string"),
    ("suite", "string"),
    ("partition_key", "string"),
    ("expectation", "string"),
    ("rule", "string"),
    ("column_name", "string"),
    ("severity", "string"),
    ("success", "bool_"),
    ("unexpected_count", "int64"),
    ("observed", "string"),
    ("examples", "string"),
    ("error", "string"),
)


def _outcome_table(rows: list[tuple]):
    """The outcome rows as an Arrow table in RESULTS_DDL's column order (``evaluated_at`` in UTC)."""
    import pyarrow as pa

    columns = list(zip(*rows, strict=True))
    arrays = [
        pa.array(values, type=getattr(pa, kind)())
        for values, (_, kind) in zip(columns[:-1], _OUTCOME_COLUMNS, strict=True)
    ]
    arrays.append(pa.array(columns[-1], type=pa.timestamp("us", tz="UTC")))
    return pa.table(arrays, names=[name for name, _ in _OUTCOME_COLUMNS] + ["evaluated_at"])


def _warehouse(warehouse: Warehouse | Path) -> Warehouse:
    """Callers outside Dagster may pass the file; its settings then come from the environment."""
    return warehouse if isinstance(warehouse, Warehouse) else Warehouse.from_settings(warehouse)
