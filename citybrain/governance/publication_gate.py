"""The privacy gate of a publication: grades and re-identification risk of what is about to be published.

Called by citybrain/publication/ where it has chosen which table goes to which tier, before anything is
written: a violation refuses the publication (the previous version stays live), like a table nobody
classified. The same report then fills each tier's ``meta.data_grades`` and ``meta.reidentification_risk``
and the publication record, from which the resource catalog reads them.

Checks (docs/GOVERNANCE.md):
* every published table and column has a GB/T 43697-2024 grade, and no table of the open tier is graded
  important or core, nor has such a column (governance/grades.py);
* every conditional table declares its quasi-identifiers, and its smallest equivalence class over them,
  measured on the warehouse table being copied, is at least ``min_equivalence_class``
  (privacy/reidentification.py, catalog/privacy.yaml).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from citybrain.governance.grades import GRADE_ZH, TableGrades, check_grades, grades_from_manifest
from citybrain.privacy import reidentification
from citybrain.privacy.config import min_equivalence_class


@dataclass
class PrivacyReport:
    grades: dict[str, TableGrades] = field(default_factory=dict)  # published table -> grades
    measures: dict[str, reidentification.RiskMeasure] = field(default_factory=dict)  # conditional tables
    problems: list[str] = field(default_factory=list)

    def grade_record(self) -> dict[str, dict[str, Any]]:
        """For the publication record: table -> its grade and its columns' grades."""
        return {t: {"grade": g.grade, "columns": dict(g.columns)} for t, g in self.grades.items()}

    def risk_record(self) -> dict[str, dict[str, Any]]:
        return {t: m.as_record() for t, m in self.measures.items()}


def check(
    con, database: str, assignment: Mapping[str, list[str]], manifest: Mapping[str, Any], schema: str = "pool"
) -> PrivacyReport:
    """Grades and equivalence classes of the tables in ``assignment`` (tier -> tables), read from the
    attached warehouse ``database``; ``problems`` lists what must stop the publication."""
    report = PrivacyReport()
    declared_grades = grades_from_manifest(manifest, schema)
    published = [t for tables in assignment.values() for t in tables]
    for table in published:
        grades = declared_grades.get(table) or TableGrades(table, None, None)
        tier = next(tier for tier, tables in assignment.items() if table in tables)
        # Judge by the tier the table is actually published to, whatever the manifest's label says.
        report.grades[table] = TableGrades(
            table, tier, grades.grade, dict(grades.columns), dict(grades.column_tiers)
        )
    report.problems += [str(p) for p in check_grades(report.grades.values())]

    conditional = assignment.get(reidentification.CONDITIONAL, [])
    if conditional:
        minimum = min_equivalence_class()
        declared = reidentification.quasi_identifiers_from_manifest(manifest, schema)
        measures, missing = reidentification.measure_tables(
            con, database, conditional, declared, minimum, schema
        )
        report.measures = {m.table: m for m in measures}
        report.problems += [str(p) for p in missing]
        report.problems += [str(m) for m in reidentification.violations(measures)]
    return report


def write_meta(con, tables: list[str], report: PrivacyReport | None) -> None:
    """``meta.data_grades`` (one row per table, column_name null, and per column) and
    ``meta.reidentification_risk`` (one row per measured table) for the tier's ``tables``."""
    con.execute(
        "CREATE TABLE meta.data_grades (table_name VARCHAR, column_name VARCHAR, grade VARCHAR, grade_zh VARCHAR)"
    )
    con.execute(
        "CREATE TABLE meta.reidentification_risk (table_name VARCHAR, quasi_identifiers VARCHAR[], "
        "records BIGINT, equivalence_classes BIGINT, smallest_class BIGINT, unique_records BIGINT, "
        "unique_share DOUBLE, classes_below_minimum BIGINT, records_below_minimum BIGINT, "
        "min_equivalence_class INTEGER, meets_minimum BOOLEAN)"
    )
    if report is None:
        return
    rows = []
    for table in tables:
        grades = report.grades.get(table)
        if grades is None:
            continue
        rows.append((table, None, grades.grade, GRADE_ZH.get(grades.grade)))
        rows += [(table, c, g, GRADE_ZH.get(g)) for c, g in grades.columns.items()]
    if rows:
        con.executemany("INSERT INTO meta.data_grades VALUES (?, ?, ?, ?)", rows)
    risks = [
        (m.table, list(m.quasi_identifiers), m.records, m.classes, m.smallest_class, m.unique_records,
         m.unique_share, m.classes_below_minimum, m.records_below_minimum, m.min_equivalence_class,
         m.meets_minimum)
        for table in tables
        if (m := report.measures.get(table)) is not None
    ]  # fmt: skip
    if risks:
        con.executemany(
            "INSERT INTO meta.reidentification_risk VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", risks
        )
