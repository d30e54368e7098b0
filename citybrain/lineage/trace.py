"""``citybrain trace pool.<table> [--date D | --key col=value]``: the files, runs and checks behind a table or row.

Answers from the live published versions themselves (meta.publication, meta.table_lineage, meta.check_results and meta.dbt_test_results):
what was published is what is traced, even while the warehouse has moved on. Looking up a row by key reads the
pool through the caller's session (a sharing token's grants, or the local operator; audited either way:
``citybrain.sharing.session``); the metadata names files and hashes, no person.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from citybrain.pool_layout import PUBLISHED_SCHEMA, PUBLISHED_TIERS, tier_path


class TraceError(LookupError):
    """The table is not published, has no lineage recorded, or the row was not found."""


@dataclass
class Trace:
    table: str
    tier: str
    version: str
    published_by_run: str
    published_at: str
    day: str | None
    deliveries: list[dict] = field(default_factory=list)
    checks: list[dict] = field(default_factory=list)

    def feeds(self) -> list[str]:
        return sorted({d["feed_id"] for d in self.deliveries})


def _published_in(table: str, directory: Path | None) -> tuple[str, Path]:
    import duckdb

    for tier in PUBLISHED_TIERS:
        path = tier_path(tier, directory)
        if not path.exists():
            continue
        with duckdb.connect(str(path), read_only=True) as con:
            found = con.execute(
                "SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?",
                [PUBLISHED_SCHEMA, table],
            ).fetchone()[0]
        if found:
            return tier, path
    raise TraceError(f"{PUBLISHED_SCHEMA}.{table} is not in any published tier")


def _day_of_row(table: str, day_column: str, key: dict[str, str], session) -> str:
    """The day of the row with ``key``, read through ``session`` (its grants apply, the read is audited)."""
    import sqlglot.expressions as exp

    if session is None:
        raise TraceError("--key reads the pool: give your token (--token) or --local-operator")
    condition = exp.and_(*(exp.column(c).eq(exp.Literal.string(v)) for c, v in key.items()))
    select = (
        exp.select(exp.column(day_column))
        .distinct()
        .from_(exp.table_(table, db=PUBLISHED_SCHEMA))
        .where(condition)
    )
    rows = session.query(select.sql(dialect="duckdb")).to_pylist()
    if not rows:
        raise TraceError(f"no row of {PUBLISHED_SCHEMA}.{table} where {key}")
    if len(rows) > 1:
        raise TraceError(
            f"{len(rows)} days match {key} in {PUBLISHED_SCHEMA}.{table}: give a key that names one row"
        )
    return str(rows[0][day_column])


def trace(
    table: str,
    day: str | None = None,
    key: dict[str, str] | None = None,
    session=None,
    directory: Path | None = None,
) -> Trace:
    """The deliveries, runs and checks behind ``pool.<table>`` (one day of it, or the day of one row).

    ``session`` (anything with ``.query(sql) -> pyarrow.Table``: ``citybrain.sharing.session.connect``) reads
    the row of ``key``."""
    import duckdb

    table = table.removeprefix(f"{PUBLISHED_SCHEMA}.")
    tier, path = _published_in(table, directory)
    with duckdb.connect(str(path), read_only=True) as con:
        has_lineage = con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'meta' AND table_name = 'table_lineage'"
        ).fetchone()[0]
        if not has_lineage:
            raise TraceError(
                f"the live {tier} version was published before lineage was recorded: publish again"
            )
        version, run_id, published_at = con.execute(
            "SELECT version, run_id, CAST(published_at AS VARCHAR) FROM meta.publication"
        ).fetchone()
        day_column = (
            con.execute("SELECT day_column FROM meta.table_days WHERE table_name = ?", [table]).fetchone()
            or [None]
        )[0]
    if key:
        day = _day_of_row(table, day_column, key, session) if day_column else None
    if day and not day_column:
        raise TraceError(f"{PUBLISHED_SCHEMA}.{table} is not a daily table: trace it without --date")
    with duckdb.connect(str(path), read_only=True) as con:
        lineage = con.execute(
            "SELECT feed_id, partition_key, source_file, file_sha256, loaded_by_run, CAST(loaded_at AS VARCHAR) AS loaded_at, "
            "status, rows_loaded, CAST(day AS VARCHAR) AS day FROM meta.table_lineage "
            "WHERE table_name = ? AND (CAST(? AS DATE) IS NULL OR day IS NULL OR day = CAST(? AS DATE)) "
            "ORDER BY feed_id, partition_key, source_file",
            [table, day, day],
        )
        names = [d[0] for d in lineage.description]
        deliveries = [dict(zip(names, row, strict=True)) for row in lineage.fetchall()]
        checks = []
        if con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'meta' AND table_name = 'check_results'"
        ).fetchone()[0]:
            result = con.execute(
                "SELECT suite, partition_key, expectation, column_name, severity, success, unexpected_count "
                "FROM meta.check_results WHERE (suite = ? OR suite LIKE ?) "
                "AND (CAST(? AS VARCHAR) IS NULL OR partition_key IS NULL OR partition_key = ?) "
                "ORDER BY severity, partition_key, expectation",
                [f"{PUBLISHED_SCHEMA}.{table}", f"%.{table}", day, day],
            )
            names = [d[0] for d in result.description]
            checks = [dict(zip(names, row, strict=True)) for row in result.fetchall()]
        if con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'meta' AND table_name = 'dbt_test_results'"
        ).fetchone()[0]:  # the dbt tests of the same run, on the whole table (or the run's days)
            result = con.execute(
                "SELECT dataset AS suite, NULL AS partition_key, 'dbt test ' || test AS expectation, "
                "NULL AS column_name, severity, status IN ('pass', 'skipped') AS success, "
                "failures AS unexpected_count FROM meta.dbt_test_results WHERE dataset = ? "
                "ORDER BY severity, test",
                [f"{PUBLISHED_SCHEMA}.{table}"],
            )
            names = [d[0] for d in result.description]
            checks += [dict(zip(names, row, strict=True)) for row in result.fetchall()]
    return Trace(table, tier, version, run_id, published_at, day, deliveries, checks)


def format_trace(t: Trace) -> str:
    lines = [
        f"{PUBLISHED_SCHEMA}.{t.table}" + (f" on {t.day}" if t.day else "") + f"  [{t.tier} tier]",
        f"  published version {t.version} by run {t.published_by_run} at {t.published_at}",
        f"  built from {len(t.deliveries)} deliveries of {len(t.feeds())} feeds ({', '.join(t.feeds()) or '-'}):",
    ]
    for d in t.deliveries:
        where = f"[{d['partition_key']}] " if d["partition_key"] else ""
        lines.append(
            f"    {d['feed_id']:<22} {where}{d['source_file']}  sha256 {str(d['file_sha256'])[:16]}…  "
            f"{d['rows_loaded']} rows, loaded by run {d['loaded_by_run']} ({d['status']})"
        )
    failed = [c for c in t.checks if not c["success"]]
    lines.append(f"  checks in the publishing run: {len(t.checks)} evaluated, {len(failed)} failed")
    for c in failed:
        where = f"[{c['partition_key']}] " if c["partition_key"] else ""
        column = f" on {c['column_name']}" if c["column_name"] else ""
        lines.append(
            f"    FAILED {c['severity']}: {where}{c['expectation']}{column} ({c['unexpected_count']} unexpected)"
        )
    return "\n".join(lines)
