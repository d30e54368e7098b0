"""Re-identification risk (重标识风险) of record-level tables, in the terms of GB/T 37964 (个人信息去标识化指南).

A conditional pool table holds one record per person or per event of a person, with the direct identifiers
(标识符: ID number, name, phone) replaced by a keyed pseudonym. What still singles a person out are the
quasi-identifiers (准标识符): attributes an attacker can know from elsewhere (age band, sex, district,
dates, place). Records alike on every quasi-identifier form an equivalence class (等价类); a table is
k-anonymous (k-匿名) when its smallest class has at least k records. A class of one is a unique record: whoever
knows that person's quasi-identifiers finds their record.

Every conditional model declares its quasi-identifiers in its dbt YAML (``config.meta.quasi_identifiers``,
a list of column names, ``[]`` only for a table with no record about a person). At publication this module
measures each such table as it is about to be published, in SQL on DuckDB (sql/equivalence_classes.sql),
and reports the tables whose smallest class is below ``min_equivalence_class`` (catalog/privacy.yaml): those
are not published. The measurements go into each tier's ``meta.reidentification_risk`` and the resource
catalog.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from importlib import resources
from typing import Any

from citybrain.vocabulary import POOL_SCHEMA

CONDITIONAL = "conditional"
META_KEY = "quasi_identifiers"


@dataclass(frozen=True)
class QuasiIdentifierProblem:
    table: str
    message: str
    rule: str = "quasi_identifiers"

    def __str__(self) -> str:
        return f"{self.table}: {self.message} [{self.rule}]"


@dataclass(frozen=True)
class RiskMeasure:
    """Equivalence classes of one table over its quasi-identifiers, as published."""

    table: str
    quasi_identifiers: tuple[str, ...]
    records: int
    classes: int
    smallest_class: int | None  # None for an empty table (no record, no risk)
    unique_records: int  # records alone in their class (class size 1)
    classes_below_minimum: int
    records_below_minimum: int
    min_equivalence_class: int

    @property
    def unique_share(self) -> float:
        return self.unique_records / self.records if self.records else 0.0

    @property
    def meets_minimum(self) -> bool:
        return self.smallest_class is None or self.smallest_class >= self.min_equivalence_class

    def as_record(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "quasi_identifiers": list(self.quasi_identifiers),
            "unique_share": self.unique_share,
        }

    def __str__(self) -> str:
        return (
            f"pool.{self.table}: smallest equivalence class {self.smallest_class} < {self.min_equivalence_class} "
            f"over ({', '.join(self.quasi_identifiers)}): {self.classes_below_minimum} class(es) with "
            f"{self.records_below_minimum} record(s) below the minimum, {self.unique_records} unique "
            f"(generalise or suppress them in the model)"
        )


def _meta(props: Mapping[str, Any]) -> dict:
    return {**(props.get("meta") or {}), **((props.get("config") or {}).get("meta") or {})}


def quasi_identifiers_from_manifest(
    manifest: Mapping[str, Any], schema: str = POOL_SCHEMA
) -> dict[str, tuple[str, ...] | None]:
    """Table -> declared quasi-identifiers of every conditional model built into ``schema`` (None when the
    model declares none). Open and restricted models are left out: open data is aggregated (small cells
    are suppressed instead) and restricted data is never published."""
    declared: dict[str, tuple[str, ...] | None] = {}
    for node, meta in _conditional_models(manifest, schema):
        value = meta.get(META_KEY)
        table = node.get("alias") or node["name"]
        declared[table] = tuple(value) if isinstance(value, list | tuple) else value
    return declared


def _conditional_models(manifest: Mapping[str, Any], schema: str):
    """(node, meta) of every conditional model built into ``schema``."""
    for node in manifest.get("nodes", {}).values():
        if node.get("resource_type") != "model" or (node.get("schema") or "").lower() != schema:
            continue
        meta = _meta(node)
        if meta.get("classification") == CONDITIONAL:
            yield node, meta


def check_declarations(
    manifest: Mapping[str, Any], schema: str = POOL_SCHEMA
) -> list[QuasiIdentifierProblem]:
    """Every conditional model declares its quasi-identifiers as a list of its own columns."""
    problems = []
    for node, meta in _conditional_models(manifest, schema):
        name = node["name"]
        value = meta.get(META_KEY)
        if value is None:
            problems.append(
                QuasiIdentifierProblem(
                    name,
                    "conditional record-level table without meta.quasi_identifiers: list the columns an "
                    "outsider could know about a person (age band, sex, district, dates, place ...; "
                    "GB/T 37964 准标识符), or [] if no record is about a person",
                )
            )
            continue
        if not isinstance(value, list | tuple) or not all(isinstance(c, str) and c for c in value):
            problems.append(
                QuasiIdentifierProblem(
                    name, f"meta.quasi_identifiers must be a list of column names, got {value!r}"
                )
            )
            continue
        columns = {c.lower() for c in node.get("columns") or {}}
        unknown = [c for c in value if c.lower() not in columns]
        if unknown:
            problems.append(
                QuasiIdentifierProblem(
                    name, f"meta.quasi_identifiers names {', '.join(unknown)}, not a column of the model"
                )
            )
        if len({c.lower() for c in value}) != len(value):
            problems.append(QuasiIdentifierProblem(name, "meta.quasi_identifiers names a column twice"))
    return problems


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _sql() -> str:
    return (
        resources.files("citybrain.privacy")
        .joinpath("sql", "equivalence_classes.sql")
        .read_text(encoding="utf-8")
    )


def measure(con, relation: str, table: str, quasi_identifiers: Iterable[str], minimum: int) -> RiskMeasure:
    """Equivalence classes of ``relation`` (an already quoted, qualified name readable on ``con``)."""
    qis = tuple(quasi_identifiers)
    if not qis:  # declared [] : no record describes a person, so there is no class to measure
        (records,) = con.execute(f"SELECT count(*) FROM {relation}").fetchone()
        return RiskMeasure(table, qis, int(records), 0, None, 0, 0, 0, minimum)
    sql = _sql().format(relation=relation, quasi_identifiers=", ".join(_quote(c) for c in qis))
    records, classes, smallest, unique, below, records_below = con.execute(
        sql, {"min_class": minimum}
    ).fetchone()
    return RiskMeasure(table, qis, int(records), int(classes), smallest, int(unique), int(below),
                       int(records_below), minimum)  # fmt: skip


def measure_tables(
    con,
    database: str,
    tables: Iterable[str],
    declared: Mapping[str, tuple[str, ...] | None],
    minimum: int,
    schema: str = POOL_SCHEMA,
) -> tuple[list[RiskMeasure], list[QuasiIdentifierProblem]]:
    """Measures of the conditional ``tables`` found in ``database``.``schema``, and the tables that cannot
    be measured because they declare no quasi-identifiers (never published unmeasured)."""
    measures, problems = [], []
    for table in tables:
        qis = declared.get(table)
        if qis is None:
            problems.append(
                QuasiIdentifierProblem(
                    table,
                    "conditional table without meta.quasi_identifiers: its "
                    "re-identification risk cannot be measured",
                )  # fmt: skip
            )
            continue
        relation = f"{_quote(database)}.{_quote(schema)}.{_quote(table)}"
        measures.append(measure(con, relation, table, qis, minimum))
    return measures, problems


def violations(measures: Iterable[RiskMeasure]) -> list[RiskMeasure]:
    """The measured tables that must not be published: smallest class below the minimum."""
    return [m for m in measures if not m.meets_minimum]
