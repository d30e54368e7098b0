"""Expectation suites: the reviewable files in ``expectations/`` and how they become GX suites.

One YAML file per dataset (``expectations/raw/<feed>.yml``, ``expectations/pool/<model>.yml``). Each
expectation is either a Great Expectations expectation by its snake_case name with its arguments, or a
``citybrain_*`` rule that expands into GX expectations with values only known at run time (the declared
schema, the city's division codes and bounding box, the trailing volume of earlier partitions).
Every expectation is marked ``severity: blocking`` (a failure stops publication) or ``warning``.
Reference: ``expectations/README.md``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from citybrain import settings
from citybrain.catalog import SAFE_LOADER
from citybrain.quality.small_cells import rule_small_cells
from citybrain.quality.unexpected_rows import SuiteError
from citybrain.quality.unexpected_rows import unexpected_rows as _rows

EXPECTATIONS_DIR = settings.REPO_ROOT / "expectations"
GX_SEVERITY = {"blocking": "critical", "warning": "warning"}

# Patterns of personal identifiers in text (DuckDB/RE2 syntax). A candidate ID number must also pass
# the GB 11643 check digit (cb_ric_problem, python-stdnum), so ordinary 18-digit numbers are not flagged.
ID_NUMBER_CANDIDATE = r"[1-9][0-9]{16}[0-9Xx]"
MOBILE_NUMBER = r"(^|[^0-9])1[3-9][0-9]{9}([^0-9]|$)"


class ExpectationEntry(BaseModel):
    model_config = ConfigDict(extra="allow")

    severity: Literal["blocking", "warning"]
    notes: str | None = None

    @model_validator(mode="after")
    def _one_expectation(self) -> ExpectationEntry:
        names = list(self.model_extra or {})
        if len(names) != 1:
            raise ValueError(f"each entry names exactly one expectation, found {names or 'none'}")
        if not isinstance(self.arguments, dict):
            raise ValueError(f"the arguments of {self.kind} must be a mapping")
        query = self.arguments.get("unexpected_rows_query")
        if isinstance(query, str) and re.search(r"[{}]", re.sub(r"\{batch\}|\{\{|\}\}", "", query)):
            # GX formats the query with {batch}: a single brace (a regex's {1,2}) fails only at run time.
            raise ValueError(
                "a literal brace in unexpected_rows_query must be doubled ({{ and }}); only {batch} is single"
            )
        return self

    @property
    def kind(self) -> str:
        return next(iter(self.model_extra))

    @property
    def arguments(self) -> dict[str, Any]:
        value = next(iter(self.model_extra.values()))
        return {} if value is None else value


class PartitionSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    column: str


class SuiteSpec(BaseModel):
    """One dataset's suite, as written in its file."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(pattern=r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")
    description: str | None = None
    partition: PartitionSpec | None = None
    expectations: list[ExpectationEntry]
    path: Path | None = Field(default=None, exclude=True)

    @property
    def schema_name(self) -> str:
        return self.dataset.split(".")[0]

    @property
    def table_name(self) -> str:
        return self.dataset.split(".")[1]

    @property
    def asset_path(self) -> list[str]:
        """The Dagster asset key: ``raw/<feed>`` for raw tables, the model name for dbt models."""
        return [self.schema_name, self.table_name] if self.schema_name == "raw" else [self.table_name]


def load_suites(directory: Path = EXPECTATIONS_DIR) -> list[SuiteSpec]:
    suites = []
    for path in sorted(directory.glob("*/*.yml")):
        try:
            raw = yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER) or {}
            suite = SuiteSpec.model_validate(raw)
        except (yaml.YAMLError, ValidationError) as error:
            raise SuiteError(f"{path}: {error}") from error
        suite.path = path
        if path.stem != suite.table_name:
            raise SuiteError(f"{path}: the file must be named after its table ({suite.table_name}.yml)")
        for entry in suite.expectations:
            # GX itself is imported only when a suite runs (it costs seconds at definitions load).
            if entry.kind not in RULES and not entry.kind.startswith(("expect_", "unexpected_rows")):
                raise SuiteError(f"{path}: unknown expectation {entry.kind!r}")
        suites.append(suite)
    return suites


@dataclass
class RunValues:
    """What the rules need at run time, read from the warehouse and the project."""

    dataset: str  # schema.table validated
    expected_columns: dict[str, str]  # column -> DuckDB type, as declared (catalog or dbt contract)
    county_codes: list[str]
    # The real extent of each configured county: code -> (min_lng, min_lat, max_lng, max_lat) of its boundary
    # polygon (reference.county_boundaries), or None with the reason in county_extent_missing.
    county_extents: dict[str, tuple[float, float, float, float] | None]
    trailing_counts: list[int]  # row counts of the partitions before the one validated, newest first
    county_extent_missing: dict[str, str] = field(default_factory=dict)  # code -> why it has no extent
    # The partition is a quiet day: every daily feed it is built from declares quiet_days and delivered the
    # day with no records (docs/INGESTION.md), so an empty partition is the truth, not a hole.
    quiet_day: bool = False


def gx_expectations(suite: SuiteSpec, values: RunValues, partition: str | None) -> list:
    """The GX expectation objects of a suite for one batch, with run-time values filled in."""
    expectations = []
    for entry in suite.expectations:
        meta = {"severity": entry.severity, "rule": entry.kind}
        if entry.kind in RULES:
            made = RULES[entry.kind](values, partition, **entry.arguments)
        else:
            expectation_class = _gx_class(entry.kind)
            if expectation_class is None:
                raise SuiteError(f"{suite.path}: Great Expectations has no expectation {entry.kind!r}")
            made = [expectation_class(**entry.arguments)]
        for expectation in made:
            expectation.severity = GX_SEVERITY[entry.severity]
            expectation.meta = {**meta, **(expectation.meta or {})}
            if entry.notes and not expectation.notes:
                expectation.notes = entry.notes
            expectations.append(expectation)
    return expectations


def _gx_class(name: str):
    import great_expectations.expectations as gxe

    if name == "unexpected_rows_expectation":  # the same expectation, its query run once (one_scan.py)
        from citybrain.quality.one_scan import OneScanUnexpectedRowsExpectation

        return OneScanUnexpectedRowsExpectation
    class_name = "".join(part.capitalize() for part in name.split("_"))
    return getattr(gxe, class_name, None)


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _braces(sql: str) -> str:
    """Escape literal braces (regex quantifiers) for GX's ``str.format`` of the query."""
    return sql.replace("{", "{{").replace("}", "}}")


def rule_schema(values: RunValues, partition: str | None) -> list:
    """Exactly the declared columns, each with its declared DuckDB type (read with ``DESCRIBE``)."""
    import great_expectations.expectations as gxe

    declared = ", ".join(
        f"({_sql_text(name)}, {_sql_text(kind)})" for name, kind in values.expected_columns.items()
    )
    types = _rows(
        "SELECT d.column_name, d.column_type AS actual_type, e.declared_type "
        "FROM (DESCRIBE SELECT * FROM {batch}) AS d "
        f"JOIN (VALUES {_braces(declared)}) AS e(column_name, declared_type) USING (column_name) "
        "WHERE d.column_type <> e.declared_type",
        "Every column has its declared type (DuckDB type names).",
    )
    columns = gxe.ExpectTableColumnsToMatchSet(column_set=list(values.expected_columns), exact_match=True)
    return [columns, types]


def rule_partition_present(values: RunValues, partition: str | None) -> list:
    """The partition validated has rows: a missing day would publish a hole. On a quiet day (the feeds it is
    built from declare quiet_days and delivered it without records) no rows is the right answer."""
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectTableRowCountToBeBetween(
            min_value=0 if values.quiet_day else 1,
            meta={"partition": partition, "quiet_day": values.quiet_day},
        )
    ]


def rule_volume_band(
    values: RunValues, partition: str | None, band: float = 0.5, partitions: int = 7, min_history: int = 3
) -> list:
    """Row count within ``band`` (a fraction) of the mean of the previous ``partitions`` partitions.

    With fewer than ``min_history`` earlier partitions there is no band yet: only "not empty" is checked,
    and the expectation's meta says so."""
    import great_expectations.expectations as gxe

    history = values.trailing_counts[:partitions]
    if len(history) < min_history:
        return [
            gxe.ExpectTableRowCountToBeBetween(
                min_value=0, meta={"volume_band": f"not enough history ({len(history)} partitions)"}
            )
        ]
    mean = sum(history) / len(history)
    return [
        gxe.ExpectTableRowCountToBeBetween(
            min_value=int(mean * (1 - band)),
            max_value=int(mean * (1 + band)) + 1,
            meta={"trailing_mean": round(mean, 1), "trailing_partitions": len(history), "band": band},
        )
    ]


def rule_current_divisions(
    values: RunValues, partition: str | None, column: str, mostly: float = 1.0
) -> list:
    """Division codes are current county codes of the configured city (reference.city_counties)."""
    import great_expectations.expectations as gxe

    return [gxe.ExpectColumnValuesToBeInSet(column=column, value_set=values.county_codes, mostly=mostly)]


def rule_within_region(
    values: RunValues, partition: str | None, lng: str, lat: str, tolerance_km: float = 2.0
) -> list:
    """Coordinates inside the bounding box of some configured county's boundary polygon, widened by
    ``tolerance_km`` (default 2 km: the grid's one edge cell, ~1 km, plus the GCJ-02 -> WGS-84 residual).

    Per county, not one box around the city: a city of three provinces is three boxes, and a large western
    county (若羌县, ~200,000 km²) is its own real extent, not a centroid plus a margin. A county without a
    boundary cannot be checked: one extra expectation fails and names it (never a silent pass), the
    others are still checked against the counties that have one. Nulls pass."""
    boxes = []
    for code, extent in sorted(values.county_extents.items()):
        if extent is None:
            continue
        min_lng, min_lat, max_lng, max_lat = extent
        margin_lat = tolerance_km / 111.0
        margin_lng = tolerance_km / (111.0 * max(0.2, _cos_deg((min_lat + max_lat) / 2)))
        boxes.append(
            f"({_sql_text(code)}, {min_lng - margin_lng:.6f}, {min_lat - margin_lat:.6f}, "
            f"{max_lng + margin_lng:.6f}, {max_lat + margin_lat:.6f})"
        )
    x, y = _quote(lng), _quote(lat)
    made = []
    if boxes:
        inside = (
            f"SELECT 1 FROM (VALUES {', '.join(boxes)}) AS box(code, min_lng, min_lat, max_lng, max_lat) "
            f"WHERE b.{x} BETWEEN box.min_lng AND box.max_lng AND b.{y} BETWEEN box.min_lat AND box.max_lat"
        )
        made.append(
            _rows(
                f"SELECT b.{x}, b.{y} FROM (SELECT * FROM {{batch}}) AS b "
                f"WHERE b.{x} IS NOT NULL AND b.{y} IS NOT NULL AND NOT EXISTS ({inside})",
                f"{lng}/{lat} lie within {tolerance_km} km of the bounding box of a configured county's "
                "boundary polygon (reference.county_boundaries).",
                counties=sorted(c for c, e in values.county_extents.items() if e is not None),
                tolerance_km=tolerance_km,
            )
        )
    missing = {
        c: values.county_extent_missing.get(c, "no boundary")
        for c, e in values.county_extents.items()
        if e is None
    }
    if missing or not boxes:
        reasons = "; ".join(f"{c}: {why}" for c, why in sorted(missing.items())) or "no configured county"
        made.append(
            _rows(
                f"SELECT {_braces(_sql_text('cannot check: ' + reasons))} AS cannot_check "
                "FROM (SELECT count(*) AS n FROM {batch}) AS counted",
                f"Cannot check {lng}/{lat} against the region: counties without a boundary ({reasons}).",
                cannot_check=sorted(missing),
            )
        )
    return made


VALIDITY_FUNCTIONS = {"resident_id": "cb_ric_problem", "uscc": "cb_uscc_problem"}


def rule_valid_share(
    values: RunValues, partition: str | None, column: str, kind: str, min_share: float = 0.95
) -> list:
    """At least ``min_share`` of the non-empty identifiers pass their check digit (python-stdnum).

    On an unpartitioned raw table the batch is its latest delivery (``validate.latest_delivery``): each
    delivered identifier is checked once, the night it arrives, not again every night with all of history."""
    if kind not in VALIDITY_FUNCTIONS:
        raise SuiteError(f"citybrain_valid_share: kind must be one of {sorted(VALIDITY_FUNCTIONS)}")
    problem = f"{VALIDITY_FUNCTIONS[kind]}({_quote(column)})"
    query = (
        "SELECT checked, invalid, round(invalid / checked, 4) AS invalid_share FROM ("
        f"SELECT count(*) AS checked, count(*) FILTER (WHERE {problem} IS NOT NULL) AS invalid "
        f"FROM {{batch}} WHERE nullif(trim({_quote(column)}), '') IS NOT NULL) "
        f"WHERE checked > 0 AND invalid / checked > {1 - min_share:.6f}"
    )
    return [_rows(query, f"At least {min_share:.0%} of {column} are valid {kind} numbers.", column=column)]


def rule_quarantine_share(
    values: RunValues, partition: str | None, max_share: float = 0.25, min_rows: int = 100
) -> list:
    """At most ``max_share`` of the rows delivered for the partition went to quarantine (raw feeds).

    Unpartitioned feeds: their latest loaded delivery. A delivery this broken is not trusted even though
    its loadable rows were loaded. Deliveries under ``min_rows`` rows are not judged by a share (two bad
    rows of six are noise, not a broken delivery)."""
    feed = values.dataset.split(".", 1)[1]
    scope = (
        f"partition_key = {_sql_text(partition)}"
        if partition
        else (
            f"log_id = (SELECT log_id FROM raw.ingestion_log WHERE feed_id = '{feed}' AND status = 'loaded' "
            "ORDER BY finished_at DESC LIMIT 1)"
        )
    )
    query = (
        "SELECT source_file, rows_received, rows_quarantined, "
        "round(rows_quarantined / rows_received, 4) AS quarantined_share, quarantined_by_reason "
        f"FROM raw.ingestion_log WHERE feed_id = '{feed}' AND status = 'loaded' AND {scope} "
        f"AND rows_received >= {max(1, int(min_rows))} AND rows_quarantined / rows_received > {max_share:.6f} "
    )
    # GX wants every query to read the batch; a count is one row even when every row was quarantined.
    query = f"SELECT log.* FROM ({query}) AS log CROSS JOIN (SELECT count(*) FROM {{batch}}) AS batch_rows"
    return [_rows(query, f"At most {max_share:.0%} of each delivery's rows quarantined.")]


def rule_no_personal_identifiers(values: RunValues, partition: str | None) -> list:
    """No text column holds a valid resident ID number or a mobile number (for open-tier tables)."""
    text_columns = [name for name, kind in values.expected_columns.items() if kind == "VARCHAR"]
    if not text_columns:
        return []
    conditions = []
    for name in text_columns:
        column = _quote(name)
        conditions.append(
            f"len(list_filter(regexp_extract_all({column}, '{ID_NUMBER_CANDIDATE}'), "
            "x -> cb_ric_problem(x) IS NULL)) > 0"
        )
        conditions.append(f"regexp_matches({column}, '{MOBILE_NUMBER}')")
    query = "SELECT * FROM {batch} WHERE " + _braces(" OR ".join(conditions))
    return [_rows(query, "No resident ID number or mobile number in any text column.")]


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _cos_deg(degrees: float) -> float:
    import math

    return math.cos(math.radians(degrees))


RULES = {
    "citybrain_schema": rule_schema,
    "citybrain_partition_present": rule_partition_present,
    "citybrain_volume_band": rule_volume_band,
    "citybrain_current_divisions": rule_current_divisions,
    "citybrain_within_region": rule_within_region,
    "citybrain_valid_share": rule_valid_share,
    "citybrain_no_personal_identifiers": rule_no_personal_identifiers,
    "citybrain_quarantine_share": rule_quarantine_share,
    "citybrain_small_cells": rule_small_cells,  # citybrain/quality/small_cells.py
}
