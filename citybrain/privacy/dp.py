"""Optional differential privacy (差分隐私) of open aggregates, applied when a version is published.

Why at publication and not in dbt: the noise must be drawn once per release and accounted for, and the same
noisy values must be published again while the true values of a period do not change (a nightly run
re-publishes every period of a table; fresh noise every night would average out and spend the budget again
each time). So this module keeps, under ``$CITYBRAIN_HOME/<ledger_dir>``:

* ``ledger.jsonl``: one line per fresh draw (table, period, epsilon spent, fingerprint of the true values
  it was drawn from, the run and version that drew it): the budget spent per table and period is the sum
  of its lines, whether or not the version that drew it went live (conservative);
* ``releases/<table>/<release id>.parquet``: the noisy values of that draw, re-published unchanged as long
  as the period's fingerprint is the same. A period whose true values changed (a late delivery, a rebuilt
  model, another configuration) gets fresh noise and spends its epsilon again; beyond the period's budget
  the publication is refused (``BudgetExceeded``), so the previous version stays live.

The ledger is restricted like the warehouse: the fingerprints are hashes of true counts.

Order with small-cell suppression (docs/GOVERNANCE.md "Differential privacy"): dbt suppresses on the true
counts; here a suppressed (null) cell stays null and gets no noise, the others get noise, are rounded and
clamped at 0, and a noisy count from 1 to k-1 is suppressed again (post-processing of the noisy value, which
costs no privacy). Columns derived from a noisy count (ratios) are recomputed from the noisy values, or they
would give the true count back.

Noise: OpenDP's ``make_laplace`` over a vector of the period's cells with the L1 sensitivity of the column
(discrete Laplace on integer columns, continuous Laplace then rounding on floating ones). The epsilon
recorded is OpenDP's own privacy map of the measurement at that sensitivity.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from citybrain import settings
from citybrain.privacy.config import differential_privacy_section, privacy_path, small_cell_k

MECHANISMS = ("laplace",)
LEDGER_FILE = "ledger.jsonl"
RELEASES_DIR = "releases"
META_TABLE = "meta.privacy_budget"
INTEGER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER"}
TOLERANCE = 1e-9  # floating-point slack when comparing spends with a budget


class DifferentialPrivacyError(RuntimeError):
    """The differential-privacy configuration does not fit the tables being published."""


class BudgetExceeded(DifferentialPrivacyError):
    """A period would spend more epsilon than its budget: nothing is published."""


@dataclass(frozen=True)
class NoisyColumn:
    name: str
    sensitivity: float  # L1 over the rows of one period: the most one person changes the column's sum
    suppressed_flag: str | None


@dataclass(frozen=True)
class DerivedColumn:
    """``multiplier * numerator / denominator``, recomputed from the noisy values."""

    name: str
    numerator: str
    denominator: str | None
    multiplier: float


@dataclass(frozen=True)
class TablePolicy:
    table: str
    period_column: str
    key: tuple[str, ...]
    epsilon: float  # per release of one period, split evenly over the columns
    budget: float  # the most one period may ever spend
    mechanism: str
    columns: tuple[NoisyColumn, ...]
    derived: tuple[DerivedColumn, ...]

    @property
    def column_epsilon(self) -> float:
        return self.epsilon / len(self.columns)

    def signature(self, k: int) -> str:
        """What the noise depends on besides the data: a change draws fresh noise."""
        return json.dumps(
            [
                self.epsilon,
                self.mechanism,
                k,
                [[c.name, c.sensitivity, c.suppressed_flag] for c in self.columns],
            ]
        )


@dataclass(frozen=True)
class DPSettings:
    enabled: bool
    ledger_dir: Path
    tables: dict[str, TablePolicy]


def dp_settings() -> DPSettings:
    """The ``differential_privacy`` section of catalog/privacy.yaml, validated (errors name the file)."""
    section = differential_privacy_section()
    where = f"{privacy_path()}: differential_privacy"
    ledger = Path(section.get("ledger_dir") or "privacy/dp")
    ledger = ledger if ledger.is_absolute() else settings.home() / ledger
    tables = {
        name: _table_policy(name, spec or {}, where) for name, spec in (section.get("tables") or {}).items()
    }
    return DPSettings(enabled=bool(section.get("enabled", False)), ledger_dir=ledger.resolve(), tables=tables)


def _table_policy(table: str, spec: dict[str, Any], where: str) -> TablePolicy:
    where = f"{where}.tables.{table}"
    for field in ("period_column", "key", "epsilon", "budget", "columns"):
        if field not in spec:
            raise DifferentialPrivacyError(f"{where}: {field} is missing")
    epsilon, budget = float(spec["epsilon"]), float(spec["budget"])
    if not (epsilon > 0 and math.isfinite(epsilon)) or budget < epsilon:
        raise DifferentialPrivacyError(f"{where}: epsilon must be > 0 and budget at least epsilon")
    mechanism = spec.get("mechanism", "laplace")
    if mechanism not in MECHANISMS:
        raise DifferentialPrivacyError(f"{where}: mechanism {mechanism!r} (one of {', '.join(MECHANISMS)})")
    columns = []
    for name, column in (spec["columns"] or {}).items():
        sensitivity = float((column or {}).get("sensitivity", 0))
        if sensitivity <= 0:
            raise DifferentialPrivacyError(f"{where}.columns.{name}: sensitivity must be > 0")
        columns.append(NoisyColumn(name, sensitivity, (column or {}).get("suppressed_flag")))
    if not columns:
        raise DifferentialPrivacyError(f"{where}: no columns")
    derived = []
    for name, ratio in (spec.get("derived") or {}).items():
        ratio = ratio or {}
        if "numerator" not in ratio:
            raise DifferentialPrivacyError(f"{where}.derived.{name}: numerator is missing")
        multiplier = float(ratio.get("multiplier", 1.0))
        if ratio.get("divide_by_var"):
            multiplier /= float(_dbt_var(ratio["divide_by_var"], f"{where}.derived.{name}"))
        derived.append(DerivedColumn(name, ratio["numerator"], ratio.get("denominator"), multiplier))
    return TablePolicy(
        table=table,
        period_column=spec["period_column"],
        key=tuple(spec["key"]),
        epsilon=epsilon,
        budget=budget,
        mechanism=mechanism,
        columns=tuple(columns),
        derived=tuple(derived),
    )


def _dbt_var(name: str, where: str) -> Any:
    """A var of the dbt project, read from its one home (dbt_project/dbt_project.yml)."""
    project = settings.REPO_ROOT / "dbt_project" / "dbt_project.yml"
    variables = (yaml.safe_load(project.read_text(encoding="utf-8")) or {}).get("vars") or {}
    if name not in variables:
        raise DifferentialPrivacyError(f"{where}: dbt var {name!r} is not set in {project}")
    return variables[name]


# --- the ledger ------------------------------------------------------------------------------------


def read_ledger(ledger_dir: Path) -> list[dict]:
    """Every fresh draw ever made (a torn last line, from a killed writer, is not a draw that was used)."""
    path = ledger_dir / LEDGER_FILE
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").split("\n")
    return [json.loads(line) for line in lines[:-1] if line.strip()]


def spent(ledger: list[dict], table: str, period: str) -> float:
    return sum(e["epsilon"] for e in ledger if e["table"] == table and e["period"] == period)


def _append_ledger(ledger_dir: Path, entries: list[dict]) -> None:
    path = ledger_dir / LEDGER_FILE
    if path.exists():  # cut a torn last line so the next one is not glued to it
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            with open(path, "r+b") as handle:
                handle.truncate(data.rfind(b"\n") + 1)
    with open(path, "ab") as handle:
        handle.write("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entries).encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())


# --- noise -----------------------------------------------------------------------------------------


def laplace_measurement(integer: bool, scale: float):
    """OpenDP's Laplace mechanism over a vector of cells (discrete Laplace when ``integer``)."""
    import opendp.prelude as dp

    dp.enable_features("contrib")
    if integer:
        space = dp.vector_domain(dp.atom_domain(T="i64")), dp.l1_distance(T="i64")
    else:
        space = dp.vector_domain(dp.atom_domain(T=float, nan=False)), dp.l1_distance(T=float)
    return dp.m.make_laplace(*space, scale=scale)


def calibrate(integer: bool, sensitivity: float, epsilon: float):
    """The measurement with the smallest scale whose privacy map at ``sensitivity`` is within ``epsilon``,
    and the epsilon it spends by OpenDP's own map."""
    import opendp.prelude as dp

    d_in = int(math.ceil(sensitivity)) if integer else float(sensitivity)
    scale = dp.binary_search_param(
        lambda s: laplace_measurement(integer, s), d_in=d_in, d_out=epsilon, T=float
    )
    measurement = laplace_measurement(integer, scale)
    return measurement, scale, float(measurement.map(d_in))


# --- applying it to a version being written --------------------------------------------------------


@dataclass
class PeriodRelease:
    table: str
    period: str
    release_id: str
    fresh: bool
    epsilon: float
    spent_total: float
    budget: float
    drawn_at: str
    drawn_by_run: str
    columns: dict[str, dict]  # column -> sensitivity, epsilon, scale


def apply(
    con, schema: str, tables: list[str], run_id: str, version: str, kept: list[str] = ()
) -> list[PeriodRelease] | None:
    """Add noise to the configured open tables in ``con`` (a version file being written, its tables already
    copied) and record the budget in ``meta.privacy_budget``. ``None`` when differential privacy is off:
    then nothing is read or written. Raises ``BudgetExceeded`` before any noise is drawn if a period would
    go over its budget. ``kept``: tables held back at this publication (citybrain/staleness.py), whose
    content is the previous version's, noise included: nothing is drawn or spent for them."""
    if not differential_privacy_section().get("enabled", False):
        return None  # off: not even the rest of the section is read
    config = dp_settings()
    missing = [t for t in config.tables if t not in tables]
    if missing:
        raise DifferentialPrivacyError(
            f"{privacy_path()}: differential privacy is configured for {', '.join(missing)}, which is not "
            f"published in the open tier (not built, or not classified open)"
        )
    k = small_cell_k()
    config.ledger_dir.mkdir(parents=True, exist_ok=True)
    ledger = read_ledger(config.ledger_dir)
    noised = {name: policy for name, policy in config.tables.items() if name not in kept}
    plans = {
        name: _plan(con, schema, policy, k, ledger, config.ledger_dir) for name, policy in noised.items()
    }
    _refuse_over_budget(config, plans, ledger)
    now = datetime.now(UTC).isoformat()
    releases: list[PeriodRelease] = []
    for name, policy in noised.items():
        releases += _release_table(
            con, schema, policy, k, plans[name], config.ledger_dir, ledger, run_id, version, now
        )
    _write_meta(con, releases)
    return releases


def _plan(con, schema, policy: TablePolicy, k: int, ledger: list[dict], ledger_dir: Path) -> dict[str, dict]:
    """Per period of the table: its fingerprint and the stored release to re-use (``None``: draw afresh)."""
    table = f'"{schema}"."{policy.table}"'
    _check_columns(con, schema, policy)
    fields = [*policy.key, *(c.name for c in policy.columns)]
    fields += [c.suppressed_flag for c in policy.columns if c.suppressed_flag]
    row = "to_json(struct_pack(" + ", ".join(f'"{f}" := "{f}"' for f in fields) + "))::VARCHAR"
    order = ", ".join(f'"{f}"' for f in policy.key)
    # Every row must belong to one period and be found again by its key, or it would keep its true value.
    nulls, duplicates = con.execute(
        f'SELECT count(*) FILTER (WHERE "{policy.period_column}" IS NULL), '
        f'count(*) - count(DISTINCT ("{policy.period_column}", {order})) FROM {table}'
    ).fetchone()
    if nulls or duplicates:
        raise DifferentialPrivacyError(
            f"{policy.table}: {nulls} rows without {policy.period_column} and {duplicates} rows repeating a key "
            f"({', '.join(policy.key)}) within a period: differential_privacy.tables.{policy.table} in "
            f"{privacy_path()} must name the table's period and key"
        )
    rows = con.execute(
        f'SELECT "{policy.period_column}"::VARCHAR, sha256(string_agg({row}, chr(10) ORDER BY {order})) '
        f"FROM {table} GROUP BY 1"
    ).fetchall()
    signature = policy.signature(k)
    plans = {}
    for period, digest in rows:
        fingerprint = hashlib.sha256(f"{signature}\n{digest}".encode()).hexdigest()
        previous = [e for e in ledger if e["table"] == policy.table and e["period"] == period]
        reuse = next(
            (
                e
                for e in reversed(previous)
                if e["fingerprint"] == fingerprint
                and _release_path(ledger_dir, policy.table, e["release_id"]).exists()
            ),
            None,
        )
        plans[str(period)] = {"fingerprint": fingerprint, "reuse": reuse}
    return plans


def _check_columns(con, schema: str, policy: TablePolicy) -> None:
    present = {
        name
        for (name,) in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database() "
            "AND schema_name = ? AND table_name = ?",
            [schema, policy.table],
        ).fetchall()
    }
    wanted = {policy.period_column, *policy.key, *(c.name for c in policy.columns)}
    wanted |= {c.suppressed_flag for c in policy.columns if c.suppressed_flag}
    wanted |= {d.name for d in policy.derived} | {d.numerator for d in policy.derived}
    wanted |= {d.denominator for d in policy.derived if d.denominator}
    absent = sorted(wanted - present)
    if absent:
        raise DifferentialPrivacyError(
            f"{privacy_path()}: differential_privacy.tables.{policy.table} names columns the table does not "
            f"have: {', '.join(absent)}"
        )


def _refuse_over_budget(config: DPSettings, plans: dict[str, dict], ledger: list[dict]) -> None:
    over = []
    for name, periods in plans.items():
        policy = config.tables[name]
        for period, plan in periods.items():
            if plan["reuse"] is None:
                before = spent(ledger, name, period)
                if before + policy.epsilon > policy.budget + TOLERANCE:
                    over.append(
                        f"{name} {period}: spent {before:g} + {policy.epsilon:g} > budget {policy.budget:g}"
                    )
    if over:
        raise BudgetExceeded(
            "refusing to publish: differential-privacy budget exceeded for "
            + "; ".join(over)
            + " (the period's true values changed after its budget was used up; raise its budget in "
            f"{privacy_path()} only if that is acceptable, the previous version stays live)"
        )


def _release_path(ledger_dir: Path, table: str, release_id: str) -> Path:
    return ledger_dir / RELEASES_DIR / table / f"{release_id}.parquet"


def _release_table(
    con, schema, policy, k, plans, ledger_dir, ledger, run_id, version, now
) -> list[PeriodRelease]:
    import pandas as pd

    table = f'"{schema}"."{policy.table}"'
    columns = ", ".join(f'"{c}"' for c in (*policy.key, *(c.name for c in policy.columns)))
    types = dict(
        con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = current_database() "
            "AND schema_name = ? AND table_name = ?",
            [schema, policy.table],
        ).fetchall()
    )
    frames, releases, entries = [], [], []
    for period in sorted(plans):
        plan = plans[period]
        if plan["reuse"] is not None:
            entry = plan["reuse"]
            frame = pd.read_parquet(_release_path(ledger_dir, policy.table, entry["release_id"]))
        else:
            true = con.execute(
                f'SELECT {columns} FROM {table} WHERE "{policy.period_column}"::VARCHAR = ?', [period]
            ).df()
            frame, column_spend = _draw(true, policy, k, types)
            entry = {
                "table": policy.table,
                "period": period,
                "release_id": uuid.uuid4().hex,
                "epsilon": sum(c["epsilon"] for c in column_spend.values()),
                "fingerprint": plan["fingerprint"],
                "columns": column_spend,
                "mechanism": policy.mechanism,
                "run_id": run_id,
                "version": version,
                "drawn_at": now,
            }
            path = _release_path(ledger_dir, policy.table, entry["release_id"])
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(path.name + ".partial")
            frame.to_parquet(partial, index=False)
            os.replace(partial, path)
            entries.append(entry)
        frame[policy.period_column + "__period"] = period
        frames.append(frame)
        releases.append(
            PeriodRelease(
                table=policy.table,
                period=period,
                release_id=entry["release_id"],
                fresh=plan["reuse"] is None,
                epsilon=entry["epsilon"],
                spent_total=spent(ledger, policy.table, period)
                + (entry["epsilon"] if plan["reuse"] is None else 0),
                budget=policy.budget,
                drawn_at=entry["drawn_at"],
                drawn_by_run=entry["run_id"],
                columns=entry["columns"],
            )
        )
    if entries:  # recorded before the version can go live: a published draw is always accounted for
        _append_ledger(ledger_dir, entries)
        ledger += entries
    if frames:
        _write_back(con, table, policy, pd.concat(frames, ignore_index=True), types)
    return releases


def _draw(true, policy: TablePolicy, k: int, types: dict[str, str]):
    """Fresh noise for one period: noisy, rounded, clamped at 0, small noisy counts suppressed again."""
    frame = true[list(policy.key)].copy()
    spend = {}
    for column in policy.columns:
        integer = types[column.name].upper() in INTEGER_TYPES
        measurement, scale, epsilon = calibrate(integer, column.sensitivity, policy.column_epsilon)
        values = true[column.name]
        present = values.notna()
        noisy = [None] * len(values)
        if present.any():
            cells = [int(v) for v in values[present]] if integer else [float(v) for v in values[present]]
            for i, value in zip(present[present].index, measurement(cells), strict=True):
                released = max(0, round(value))  # post-processing: an integer count, never negative
                noisy[i] = None if 0 < released < k else released
        frame[column.name] = noisy
        if column.suppressed_flag:  # a flag shared by several columns is set when any of them is hidden
            hidden = [v is None for v in noisy]
            previous = (
                frame[column.suppressed_flag] if column.suppressed_flag in frame else [False] * len(hidden)
            )
            frame[column.suppressed_flag] = [a or b for a, b in zip(previous, hidden, strict=True)]
        spend[column.name] = {"sensitivity": column.sensitivity, "epsilon": epsilon, "scale": scale}
    return frame, spend


def _write_back(con, table: str, policy: TablePolicy, frame, types: dict[str, str]) -> None:
    """Replace the true values by the released ones, then recompute the derived columns."""
    con.register("dp_release", frame)
    try:
        released = [c.name for c in policy.columns]
        released += sorted({c.suppressed_flag for c in policy.columns if c.suppressed_flag})
        assignments = [f'"{c}" = CAST(r."{c}" AS {types[c]})' for c in released]
        match = " AND ".join(f't."{c}" IS NOT DISTINCT FROM r."{c}"' for c in policy.key)
        (updated,) = con.execute(
            f"UPDATE {table} AS t SET {', '.join(assignments)} FROM dp_release AS r WHERE {match} "
            f'AND t."{policy.period_column}"::VARCHAR = r."{policy.period_column}__period"'
        ).fetchone()
        (rows,) = con.execute(f"SELECT count(*) FROM {table}").fetchone()
        if updated != rows:  # a row not matched would keep its true value: never publish that
            raise DifferentialPrivacyError(
                f"{policy.table}: the noisy release matched {updated} of {rows} rows; nothing is published"
            )
    finally:
        con.unregister("dp_release")
    for d in policy.derived:
        ratio = f'{d.multiplier!r} * "{d.numerator}"'
        ratio += f' / nullif("{d.denominator}", 0)' if d.denominator else ""
        con.execute(f'UPDATE {table} SET "{d.name}" = {ratio}')


def _write_meta(con, releases: list[PeriodRelease]) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS meta")
    con.execute(
        f"CREATE TABLE {META_TABLE} (table_name VARCHAR, period VARCHAR, release_id VARCHAR, fresh BOOLEAN, "
        "epsilon DOUBLE, spent_total DOUBLE, budget DOUBLE, drawn_at TIMESTAMPTZ, drawn_by_run VARCHAR, "
        "columns JSON)"
    )
    con.executemany(
        f"INSERT INTO {META_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?::TIMESTAMPTZ, ?, ?::JSON)",
        [
            [
                r.table,
                r.period,
                r.release_id,
                r.fresh,
                r.epsilon,
                r.spent_total,
                r.budget,
                r.drawn_at,
                r.drawn_by_run,
                json.dumps(r.columns),
            ]
            for r in releases
        ],
    )
