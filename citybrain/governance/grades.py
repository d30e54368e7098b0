"""Data grades of GB/T 43697-2024 (数据安全技术 数据分类分级规则): the one vocabulary and the open-tier rule.

Beside its sharing tier (``classification``: who may read it), every pool table and column carries a grade
(``grade``: how much harm its leak, tampering or loss would do, DESIGN.md §5). The standard has three
levels, from high to low 核心数据 (core), 重要数据 (important) and 一般数据 (general). The pool writes them
in English in dbt ``meta`` (``grade: general``) and shows the Chinese names in the catalog and ``meta``.

Two rules follow from the grades, checked at build time (governance/classification.py) and again at
publication (citybrain/publication/), so a grade changed after the build is still caught:

* a table's grade is at least its highest column grade (就高从严: the whole is at least as sensitive as any
  part; aggregation may raise it further, never lower it);
* nothing graded important or core is published to the open tier: neither an open table with such a grade
  nor an open table with such a column, nor a column marked open with such a grade.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from citybrain.vocabulary import POOL_SCHEMA

GRADES = ("general", "important", "core")  # low to high
GRADE_RANK = {grade: rank for rank, grade in enumerate(GRADES)}
GRADE_ZH = {"general": "一般数据", "important": "重要数据", "core": "核心数据"}
# The only grade the open tier (无条件开放) may carry.
OPEN_TIER_GRADES = frozenset({"general"})
OPEN_TIER = "open"


def grade_label(grade: str | None) -> str:
    """``一般数据 (general)``; ``未定级`` for a missing or unknown grade (the checks refuse those)."""
    if grade not in GRADE_RANK:
        return "未定级 (ungraded)"
    return f"{GRADE_ZH[grade]} ({grade})"


def highest(grades: Iterable[str]) -> str | None:
    known = [g for g in grades if g in GRADE_RANK]
    return max(known, key=GRADE_RANK.__getitem__) if known else None


@dataclass(frozen=True)
class TableGrades:
    """The grades one pool model declares: its own and each column's (None when missing)."""

    table: str
    classification: str | None
    grade: str | None
    columns: dict[str, str | None] = field(default_factory=dict)  # column -> grade
    column_tiers: dict[str, str | None] = field(default_factory=dict)  # column -> classification


@dataclass(frozen=True)
class GradeProblem:
    table: str
    column: str | None
    rule: str  # missing_grade | grade_below_column | graded_data_in_open_tier
    message: str

    def __str__(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        return f"{where}: {self.message} [{self.rule}]"


def _meta(props: Mapping[str, Any]) -> dict:
    """``meta`` as dbt 1.10+ writes it (config.meta), falling back to the top-level copy."""
    return {**(props.get("meta") or {}), **((props.get("config") or {}).get("meta") or {})}


def grades_from_manifest(manifest: Mapping[str, Any], schema: str = POOL_SCHEMA) -> dict[str, TableGrades]:
    """Table name -> declared grades of every model built into ``schema`` (read when checking, never cached:
    grades change with the dbt project)."""
    found: dict[str, TableGrades] = {}
    for node in manifest.get("nodes", {}).values():
        if node.get("resource_type") != "model" or (node.get("schema") or "").lower() != schema:
            continue
        meta = _meta(node)
        columns = node.get("columns") or {}
        table = node.get("alias") or node["name"]
        found[table] = TableGrades(
            table=table,
            classification=meta.get("classification"),
            grade=meta.get("grade"),
            columns={name: _meta(props).get("grade") for name, props in columns.items()},
            column_tiers={name: _meta(props).get("classification") for name, props in columns.items()},
        )
    return found


def check_grades(tables: Iterable[TableGrades]) -> list[GradeProblem]:
    """Every violation of the grade rules (module docstring) among ``tables``."""
    problems: list[GradeProblem] = []
    allowed = ", ".join(f"{g} ({GRADE_ZH[g]})" for g in GRADES)
    for t in tables:
        if t.grade not in GRADE_RANK:
            problems.append(
                GradeProblem(
                    t.table, None, "missing_grade", f"meta.grade is {t.grade!r}, not one of {allowed}"
                )
            )
        for column, grade in t.columns.items():
            if grade not in GRADE_RANK:
                problems.append(
                    GradeProblem(
                        t.table, column, "missing_grade", f"meta.grade is {grade!r}, not one of {allowed}"
                    )
                )
        top = highest(t.columns.values())
        if t.grade in GRADE_RANK and top and GRADE_RANK[top] > GRADE_RANK[t.grade]:
            problems.append(
                GradeProblem(
                    t.table, None, "grade_below_column",
                    f"graded {grade_label(t.grade)} but a column is {grade_label(top)} (a table's grade is at "
                    f"least its highest column's)",
                )
            )  # fmt: skip
        problems += open_tier_problems(t)
    return problems


def open_tier_problems(t: TableGrades) -> list[GradeProblem]:
    """Important or core data marked for the open tier: the table itself, or any of its columns."""
    problems = []
    if t.classification == OPEN_TIER and t.grade in GRADE_RANK and t.grade not in OPEN_TIER_GRADES:
        problems.append(
            GradeProblem(
                t.table, None, "graded_data_in_open_tier",
                f"open table graded {grade_label(t.grade)}: only {grade_label('general')} may be opened",
            )
        )  # fmt: skip
    for column, grade in t.columns.items():
        if grade not in GRADE_RANK or grade in OPEN_TIER_GRADES:
            continue
        if t.classification == OPEN_TIER or t.column_tiers.get(column) == OPEN_TIER:
            problems.append(
                GradeProblem(
                    t.table, column, "graded_data_in_open_tier",
                    f"column graded {grade_label(grade)} would be opened (table or column classified open): "
                    f"grade it {grade_label('general')} or classify it conditional",
                )
            )  # fmt: skip
    return problems
