"""The catalog's telecom operators and operator feeds, as the dbt project needs them.

Operator codes reach the models at run time, as data: ``reference.operators`` (every declared operator) and the
``operator_code`` of each feed in ``reference.feeds``. Which staging models the operator models union must be known
while dbt parses, before any table exists, and dbt reads no YAML of ours: the list is the dbt var
``operator_feeds`` in dbt_project/dbt_project.yml. ``operator_feeds_var`` is what the catalog says that var must
be; ``declaration_problems`` compares the two, and the reference step fails on a difference (with the block to
paste) rather than let dbt union other feeds than the catalog declares. The var changes only with the catalog, so
the parse state stays valid from night to night.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from citybrain.catalog import Catalog

if TYPE_CHECKING:
    import pandas as pd

DBT_VAR = "operator_feeds"
UNION_KINDS = ("presence", "od", "cell_sites")  # kinds the operator models union, one staging model per feed


def operator_table(catalog: Catalog) -> pd.DataFrame:
    """Every declared operator: operator_code, name_zh, name_en (also those without a feed, e.g. CBN)."""
    import pandas as pd

    rows = [
        {"operator_code": code, "name_zh": op.name, "name_en": op.en}
        for code, op in catalog.operators.items()
    ]
    return pd.DataFrame(rows, columns=["operator_code", "name_zh", "name_en"])


def operator_feeds_var(catalog: Catalog) -> dict[str, list[dict[str, str]]]:
    """The dbt var ``operator_feeds`` the catalog implies: per kind, the feeds in catalog order; a presence feed
    with its spatial unit (and the cell_sites feed placing its cells)."""
    result: dict[str, list[dict[str, str]]] = {}
    for kind in UNION_KINDS:
        entries = []
        for feed in catalog.operator_feeds(kind):
            entry = {"feed": feed.id}
            declared = feed.operator_feed
            if declared.unit:
                entry["unit"] = declared.unit
            if declared.cell_sites:
                entry["cell_sites"] = declared.cell_sites
            entries.append(entry)
        result[kind] = entries
    return result


def dbt_project_var(project_file: Path) -> object:
    """The ``operator_feeds`` var as dbt_project.yml sets it (None when absent)."""
    project = yaml.safe_load(Path(project_file).read_text(encoding="utf-8")) or {}
    return (project.get("vars") or {}).get(DBT_VAR)


def declaration_problems(catalog: Catalog, project_file: Path) -> list[str]:
    """Differences between the catalog's operator feeds and the dbt var (empty: they agree)."""
    wanted = operator_feeds_var(catalog)
    found = dbt_project_var(project_file)
    if not isinstance(found, dict):
        return [f"{project_file}: vars.{DBT_VAR} is missing"]
    problems = []
    for kind in UNION_KINDS:
        have = [dict(e) for e in found.get(kind) or []]
        if have != wanted[kind]:
            problems.append(
                f"{project_file}: vars.{DBT_VAR}.{kind} is {have}, the catalog declares {wanted[kind]}"
            )
    extra = sorted(set(found) - set(UNION_KINDS))
    if extra:
        problems.append(f"{project_file}: vars.{DBT_VAR} has unknown kinds {extra}")
    return problems


def var_block(catalog: Catalog) -> str:
    """The dbt_project.yml lines to paste under ``vars:`` for ``catalog``."""
    lines = [f"  {DBT_VAR}:"]
    for kind, entries in operator_feeds_var(catalog).items():
        if not entries:
            lines.append(f"    {kind}: []")
            continue
        lines.append(f"    {kind}:")
        for entry in entries:
            lines.append("      - {" + ", ".join(f"{k}: {v}" for k, v in entry.items()) + "}")
    return "\n".join(lines)
