"""The blocking check of small-cell suppression in the open tier (``citybrain_small_cells`` in a suite).

What it proves, for one batch of an open table, with k read from catalog/privacy.yaml
(``citybrain.privacy.config.small_cell_k``, the same k the dbt models read through ``cb_small_cell_k()``):

* no published count of people or trips is above 0 and below k (an estimate of 0.4 people included);
* a suppression flag is never set on a published value, and every ratio declared as computed from a count
  is null where the count's flag is set (the ratio would give the count back);
* with ``source`` (the same cells before suppression, in the warehouse and never published) and
  ``margins``: for every margin group, i.e. a set of cells whose total is published or derivable from what
  is published, the true total minus the published cells, which is the sum of the hidden cells, leaves no
  hidden cell recoverable: the group hides no cell, or at least two whose true values sum to at least k.
  A cell missing from the batch counts as hidden, since its value is in the total too.

Each becomes one ``UnexpectedRowsExpectation`` whose rows are the offending cells or groups, so a failure
names them in Dagster and in Data Docs. The suppression itself is dbt's (dbt_project/macros/small_cells.sql);
this module never calls it.

Suite entry (``expectations/pool/<model>.yml``)::

    - citybrain_small_cells:
        counts: {est_population: est_population_suppressed}   # count column: its flag column
        ratios: {est_population_suppressed: [some_ratio]}     # flag: columns that must be null with it
        source: pool.fct_presence_hourly_unsuppressed       # true values, same key
        key: [grid_id, hour_start]
        value: est_population                                 # the true count in `source`
        margins: [[district_code, hour_start]]                # groups of `source` columns
        scope: stat_date                                      # source rows of the batch's days only
      severity: blocking
"""

from __future__ import annotations

from typing import Any

from citybrain.privacy.config import small_cell_k
from citybrain.quality.unexpected_rows import SuiteError, unexpected_rows


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def rule_small_cells(
    values: Any,
    partition: str | None,
    counts: dict[str, str],
    ratios: dict[str, list[str]] | None = None,
    source: str | None = None,
    key: list[str] | None = None,
    value: str | None = None,
    margins: list[list[str]] | None = None,
    scope: str | None = None,
) -> list:
    """The expectations of one ``citybrain_small_cells`` entry (see the module docstring)."""
    k = small_cell_k()
    if not counts:
        raise SuiteError("citybrain_small_cells: `counts` lists no column")
    if margins and not (source and key and value):
        raise SuiteError("citybrain_small_cells: `margins` needs `source`, `key` and `value`")
    made = []
    small = " OR ".join(f"({_quote(c)} > 0 AND {_quote(c)} < {k})" for c in counts)
    made.append(
        unexpected_rows(
            f"SELECT * FROM {{batch}} WHERE {small}",
            f"No published count of people or trips is above 0 and below k = {k} "
            f"({', '.join(counts)}; k from catalog/privacy.yaml).",
            small_cell_k=k,
        )
    )
    shown = " OR ".join(f"({_quote(flag)} AND {_quote(c)} IS NOT NULL)" for c, flag in counts.items())
    for flag, columns in (ratios or {}).items():
        shown += "".join(f" OR ({_quote(flag)} AND {_quote(c)} IS NOT NULL)" for c in columns)
    made.append(
        unexpected_rows(
            f"SELECT * FROM {{batch}} WHERE {shown}",
            "Where a suppression flag is set, the count and every ratio computed from it are null.",
        )
    )
    for group in margins or []:
        made.append(_margin(group, source, key, value, scope, k))
    return made


def _margin(group: list[str], source: str, key: list[str], value: str, scope: str | None, k: int) -> Any:
    """Groups of ``group`` where the true total minus the published cells gives a hidden cell away."""
    published_value = _quote(value)
    # GX puts the batch query in place of {batch} with or without an alias: read it once, as `published`.
    join = " AND ".join(f"t.{_quote(c)} = p.{_quote(c)}" for c in key)
    columns = ", ".join(f"t.{_quote(c)}" for c in group)
    where = f"WHERE t.{_quote(scope)} IN (SELECT DISTINCT {_quote(scope)} FROM published)" if scope else ""
    schema, table = source.split(".", 1)
    hidden = f"p.{published_value} IS NULL"
    query = (
        "WITH published AS (SELECT * FROM {batch}) "
        f"SELECT {columns}, count(*) FILTER (WHERE {hidden}) AS hidden_cells, "
        f"sum(t.{published_value}) FILTER (WHERE {hidden}) AS hidden_sum, "
        f"sum(t.{published_value}) AS true_total "
        f"FROM {_quote(schema)}.{_quote(table)} AS t LEFT JOIN published AS p ON {join} {where} "
        f"GROUP BY {columns} "
        f"HAVING count(*) FILTER (WHERE {hidden}) = 1 "
        f"OR (count(*) FILTER (WHERE {hidden}) > 1 "
        f"AND sum(t.{published_value}) FILTER (WHERE {hidden}) < {k})"
    )
    return unexpected_rows(
        query,
        f"No hidden cell can be recovered from the total of its {' x '.join(group)} group: a group hides "
        f"no cell, or at least two summing to at least k = {k} (true values from {source}).",
        margin=group,
        small_cell_k=k,
    )
