"""Parity of the pool built on Spark with the pool built on DuckDB, from the same raw files.

Both builds read the lake's Parquet files (``citybrain/lake/parquet_lake.py``): DuckDB through views in a
fresh database file, Spark through views in its metastore. Then DuckDB compares, table by table of the
pool schema:

- row counts;
- a content hash of every column that is not floating point (each value cast to text, nulls marked,
  hashed per row, summed: independent of row order and of engine-specific integer widths);
- for floating-point columns, rows are matched on the other columns and the maximum absolute difference
  is reported (per column; the "indicators"); equal means within ``FLOAT_TOLERANCE`` relative to the
  magnitude, and null on both sides.

The report is JSON (``parity.json``) plus a Markdown table (``parity.md``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb

from citybrain.ingest.warehouse import quote_ident
from citybrain.lake.parquet_lake import duckdb_views
from citybrain.scale.spark_pool import built_tables, parquet_scan
from citybrain.vocabulary import POOL_SCHEMA

FLOAT_TOLERANCE = 1e-9  # relative: |a - b| <= tol * max(1, |a|, |b|)
FLOAT_TYPES = {"DOUBLE", "FLOAT", "REAL"}
DBT_PROJECT = Path(__file__).resolve().parents[2] / "dbt_project"


@dataclass
class TableParity:
    table: str
    rows_duckdb: int
    rows_spark: int
    hash_columns: list[str]
    float_columns: list[str]
    content_equal: bool
    unmatched_rows: int = 0
    max_abs_diff: dict[str, float | None] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return not self.problems


def dbt_build(target: str, target_path: Path, env: dict[str, str], dbt_vars: dict | None = None) -> float:
    """One ``citybrain-dbt build`` of the whole project (unit tests excluded); returns seconds."""
    command = [
        str(Path(sys.executable).with_name("citybrain-dbt")),
        "build",
        "--target",
        target,
        "--profiles-dir",
        str(DBT_PROJECT),
        "--project-dir",
        str(DBT_PROJECT),
        "--target-path",
        str(target_path),
        "--exclude-resource-type",
        "unit_test",
    ]
    if dbt_vars:
        command += ["--vars", json.dumps(dbt_vars)]
    started = time.monotonic()
    result = subprocess.run(
        command, env={**os.environ, **env}, capture_output=True, text=True, cwd=DBT_PROJECT
    )
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-40:])
        raise RuntimeError(f"dbt build on the {target} target failed:\n{tail}")
    return time.monotonic() - started


def duckdb_from_lake(lake: Path, database: Path) -> None:
    """A fresh DuckDB database whose sources are views over the lake's Parquet files."""
    database.unlink(missing_ok=True)
    with duckdb.connect(str(database)) as con:
        duckdb_views(con, lake)


def _columns(con: duckdb.DuckDBPyConnection, relation: str) -> dict[str, str]:
    return {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()}


def _row_hash(columns: list[str]) -> str:
    parts = ", ".join(f"coalesce(cast({quote_ident(c)} AS VARCHAR), '\\N')" for c in columns)
    return f"hash(concat_ws(chr(31), {parts}))" if columns else "0"


def compare_table(con: duckdb.DuckDBPyConnection, table: str, duck: str, spark: str) -> TableParity:
    duck_cols, spark_cols = _columns(con, duck), _columns(con, spark)
    problems = []
    if set(duck_cols) != set(spark_cols):
        problems.append(
            f"columns differ: only DuckDB {sorted(set(duck_cols) - set(spark_cols))}, "
            f"only Spark {sorted(set(spark_cols) - set(duck_cols))}"
        )
    common = [c for c in duck_cols if c in spark_cols]
    floats = [
        c for c in common if duck_cols[c].upper() in FLOAT_TYPES or spark_cols[c].upper() in FLOAT_TYPES
    ]
    others = [c for c in common if c not in floats]
    (rows_d, hash_d), (rows_s, hash_s) = (
        con.execute(f"SELECT count(*), coalesce(sum({_row_hash(others)}), 0) FROM {rel}").fetchone()
        for rel in (duck, spark)
    )
    if rows_d != rows_s:
        problems.append(f"row counts differ: DuckDB {rows_d}, Spark {rows_s}")
    content_equal = hash_d == hash_s
    if not content_equal:
        problems.append("content of the non-float columns differs")
    result = TableParity(table, rows_d, rows_s, others, floats, content_equal, problems=problems)
    if floats and not problems:
        key = _row_hash(others)
        diffs = ", ".join(
            f"max(abs(d.{quote_ident(c)} - s.{quote_ident(c)})), "
            f"count(*) FILTER (WHERE (d.{quote_ident(c)} IS NULL) <> (s.{quote_ident(c)} IS NULL) OR "
            f"abs(d.{quote_ident(c)} - s.{quote_ident(c)}) > {FLOAT_TOLERANCE} * greatest(1, abs(d.{quote_ident(c)}), abs(s.{quote_ident(c)})))"
            for c in floats
        )
        # Rows matched by their non-float columns and their position among equal keys.
        numbered = (
            "SELECT *, {key} AS _k, row_number() OVER (PARTITION BY {key} ORDER BY {order}) AS _n FROM {rel}"
        )
        order = ", ".join(quote_ident(c) for c in floats)
        query = (
            f"WITH d AS ({numbered.format(key=key, order=order, rel=duck)}), "
            f"s AS ({numbered.format(key=key, order=order, rel=spark)}) "
            f"SELECT count(*) FILTER (WHERE d._k IS NULL OR s._k IS NULL), {diffs} "
            f"FROM d FULL OUTER JOIN s ON d._k = s._k AND d._n = s._n"
        )
        values = con.execute(query).fetchone()
        result.unmatched_rows = values[0]
        if values[0]:
            problems.append(f"{values[0]} rows could not be matched on their non-float columns")
        for i, column in enumerate(floats):
            result.max_abs_diff[column] = values[1 + 2 * i]
            if values[2 + 2 * i]:
                problems.append(f"{column}: {values[2 + 2 * i]} values differ beyond the tolerance")
    return result


def compare(duck_database: Path, spark_warehouse: Path, manifest: dict) -> list[TableParity]:
    """Compare every pool table of ``manifest`` (the DuckDB build's) in the two builds."""
    results = []
    with duckdb.connect(str(duck_database), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        for table in sorted(built_tables(manifest), key=lambda t: t["name"]):
            if table["schema"] != POOL_SCHEMA:
                continue
            duck = f"{quote_ident(POOL_SCHEMA)}.{quote_ident(table['name'])}"
            try:
                spark = parquet_scan(POOL_SCHEMA, table["name"], spark_warehouse)
            except FileNotFoundError as missing:
                results.append(TableParity(table["name"], 0, 0, [], [], False, problems=[str(missing)]))
                continue
            results.append(compare_table(con, table["name"], duck, spark))
    return results


def write_report(results: list[TableParity], out_dir: Path, extra: dict) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    report = {
        **extra,
        "float_tolerance_relative": FLOAT_TOLERANCE,
        "tables": [asdict(r) | {"equal": r.equal} for r in results],
        "all_equal": bool(results) and all(r.equal for r in results),
    }
    (out_dir / "parity.json").write_text(
        json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    lines = [
        "| pool table | rows DuckDB | rows Spark | content hash | float columns: max abs difference | equal |",
        "|---|---:|---:|---|---|---|",
    ]
    for r in results:
        floats = (
            ", ".join(f"{c} {v:.3g}" if v is not None else f"{c} –" for c, v in r.max_abs_diff.items()) or "–"
        )
        lines.append(
            f"| {r.table} | {r.rows_duckdb} | {r.rows_spark} | {'same' if r.content_equal else 'DIFFERENT'} | "
            f"{floats} | {'yes' if r.equal else 'NO: ' + '; '.join(r.problems)} |"
        )
    (out_dir / "parity.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return report


def run_parity(
    lake: Path,
    work_dir: Path,
    *,
    spark_target: str = "spark",
    dbt_vars: dict | None = None,
    spark_warehouse: Path | None = None,
    extra: dict | None = None,
) -> dict:
    """Build the pool on DuckDB from ``lake`` and compare it with the pool built on Spark from the same
    files: Spark's tables under ``spark_warehouse`` when given (e.g. the cluster's, after a nightly run on
    the ``spark_thrift`` target), else a fresh ``spark_target`` build into ``work_dir/spark``."""
    work_dir.mkdir(parents=True, exist_ok=True)
    duck_database = work_dir / "duckdb_pool.duckdb"
    duckdb_from_lake(lake, duck_database)
    common = {"CITYBRAIN_LAKE": str(lake)}
    seconds = {
        "duckdb": dbt_build(
            "duckdb",
            work_dir / "target_duckdb",
            {**common, "CITYBRAIN_WAREHOUSE": str(duck_database)},
            dbt_vars,
        )
    }
    if spark_warehouse is None:
        spark_state = work_dir / "spark"
        seconds["spark"] = dbt_build(
            spark_target,
            work_dir / "target_spark",
            {**common, "CITYBRAIN_SPARK_DIR": str(spark_state)},
            dbt_vars,
        )
        spark_warehouse = spark_state / "warehouse"
    manifest = json.loads((work_dir / "target_duckdb" / "manifest.json").read_text(encoding="utf-8"))
    results = compare(duck_database, spark_warehouse, manifest)
    return write_report(
        results,
        work_dir,
        {
            "lake": str(lake),
            "spark_target": spark_target,
            "spark_warehouse": str(spark_warehouse),
            "dbt_vars": dbt_vars or {},
            "build_seconds": {k: round(v, 1) for k, v in seconds.items()},
            **(extra or {}),
        },
    )
