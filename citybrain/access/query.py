"""The local operator's read-only session over the published tiers (token holders read through
``citybrain.sharing``, which reuses the lockdown below).

The session is an in-memory DuckDB database: each tier's live file is attached READ_ONLY, and a
view ``pool.<table>`` per published table makes every table readable under one name whatever its tier
(``meta.publication`` lists the attached versions). Then external access is switched off, extensions
cannot be installed or loaded, and the configuration is locked, so even SQL the guard missed cannot read a
file, attach another database or write anything. Every query, export and refusal is audited.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import duckdb
import pyarrow as pa

from citybrain.access import audit
from citybrain.access.identity import REPLACEMENT, AccessDenied, operator_identity, refuse_retired
from citybrain.access.sql_guard import CheckedQuery, QueryRejected, check_query
from citybrain.pool_layout import PUBLISHED_SCHEMA, PUBLISHED_TIERS, tier_path

# Switched off after the tiers are attached, in this order: lock_configuration last.
LOCKDOWN = (
    "SET enable_external_access = false",
    "SET autoinstall_known_extensions = false",
    "SET autoload_known_extensions = false",
    "SET allow_community_extensions = false",
    "SET lock_configuration = true",
)
SWITCH_RETRIES = 20


class TierNotPublished(FileNotFoundError):
    """A granted tier has no published file yet."""


class Session:
    """A locked-down connection plus the user, tiers and readable tables it was opened with."""

    def __init__(self, con, user: str, tiers: list[str], table_tiers: dict[str, str], via: str):
        self.con = con
        self.user = user
        self.tiers = tiers
        self.table_tiers = table_tiers  # "pool.<table>" → tier
        self.via = via

    # --- the audited entry points -------------------------------------------------------------------
    def check(self, sql: str, action: str = "query", target: str | None = None) -> CheckedQuery:
        """Guard ``sql``; a rejection is audited before it is raised."""
        try:
            return check_query(sql, self.readable)
        except QueryRejected as error:
            self._audit(action, "rejected", sql=sql, target=target, detail=str(error))
            raise

    def query(self, sql: str) -> pa.Table:
        """Run one guarded query; the whole result comes back as an Arrow table (and its row count is audited)."""
        return self._run(sql, "query")

    def df(self, sql: str):
        return self.query(sql).to_pandas()

    def export(self, sql: str, path: Path) -> int:
        """Write the result to ``path`` (.csv or .parquet) from Python: the engine itself may not write files."""
        path = export_path(path)
        return write_export(self._run(sql, "export", target=str(path.resolve())), path)

    @property
    def readable(self) -> set[str]:
        return set(self.table_tiers) | {"meta.publication"}

    def close(self) -> None:
        self.con.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- internals ------------------------------------------------------------------------------------
    def _run(self, sql: str, action: str, target: str | None = None) -> pa.Table:
        checked = self.check(sql, action, target)
        tiers = self._tiers_of(checked)
        try:
            result = self.con.execute(checked.sql).fetch_arrow_table()
        except duckdb.Error as error:
            self._audit(
                action, "error", sql=sql, tables=checked.tables, tiers=tiers, target=target, detail=str(error)
            )
            raise
        self._audit(
            action, "ok", sql=sql, tables=checked.tables, tiers=tiers, rows=result.num_rows, target=target
        )
        return result

    def _tiers_of(self, checked: CheckedQuery) -> list[str]:
        return sorted({self.table_tiers[t] for t in checked.tables if t in self.table_tiers})

    def _audit(
        self, action, outcome, *, sql=None, tables=(), tiers=None, rows=None, target=None, detail=None
    ):
        audit.append(
            action,
            outcome=outcome,
            user=self.user,
            via=self.via,
            tiers=self.tiers if tiers is None else tiers,
            tables=tables,
            sql=sql,
            rows=rows,
            target=target,
            detail=detail,
        )


def export_path(path: Path | str) -> Path:
    """``path`` as a Path if it names a file an export may write (.csv or .parquet), checked before the query
    runs so a refused export reads nothing. Shared by the operator's and the token holders' sessions."""
    path = Path(path)
    if path.suffix.lower() not in (".csv", ".parquet"):
        raise ValueError(f"export to .csv or .parquet, not {path.name}")
    return path


def write_export(table: pa.Table, path: Path) -> int:
    """Write a query's result to ``path`` (from ``export_path``) from Python, since the locked-down engine
    itself may not write files; the number of rows written."""
    if path.suffix.lower() == ".csv":
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, path)
    else:
        import pyarrow.parquet as pq

        pq.write_table(table, path)
    return table.num_rows


def connect(
    *,
    local_operator: bool = False,
    tiers: Sequence[str] | None = None,
    directory: Path | None = None,
    via: str = "python",
    user: str | None = None,
) -> Session:
    """The local operator's read-only session over every published tier (or over ``tiers``), audited as
    ``operator:<OS login>``. Only for the machine's owner, who can read the tier files anyway; everybody else
    reads with a sharing token through ``citybrain.sharing.session.connect(token=...)``. ``user`` is refused:
    a name is no identity (``citybrain.access.identity``)."""
    refuse_retired(user)
    if not local_operator:
        raise AccessDenied(f"who is reading? {REPLACEMENT} (in Python: connect(local_operator=True))")
    operator = operator_identity()
    for tier in tiers or ():
        if tier not in PUBLISHED_TIERS:
            error = AccessDenied(
                f"unknown tier {tier!r}: published tiers are {', '.join(PUBLISHED_TIERS)}"
                + (" — restricted data never leaves the warehouse" if tier == "restricted" else "")
            )
            audit.append("connect", outcome="denied", user=operator, via=via, tiers=tiers, detail=str(error))
            raise error
    opened = list(tiers) if tiers else list(PUBLISHED_TIERS)
    paths = {tier: tier_path(tier, directory) for tier in opened}
    if not tiers and any(path.exists() for path in paths.values()):
        paths = {tier: path for tier, path in paths.items() if path.exists()}  # every tier published so far
        opened = list(paths)
    missing = [f"{tier} ({path})" for tier, path in paths.items() if not path.exists()]
    if missing:
        raise TierNotPublished(f"not published yet: {', '.join(missing)}; run the nightly job first")
    con, table_tiers = _open(paths)
    return Session(con, operator, opened, table_tiers, via)


def _open(paths: dict[str, Path]):
    """Attach the tiers and build the views; re-attach if a publication switched a tier in between, so a
    session never joins one version's open tier with another version's conditional tier."""
    for _attempt in range(SWITCH_RETRIES):
        con = duckdb.connect(":memory:")
        try:
            versions = {}
            for tier, path in paths.items():
                con.execute(f"ATTACH '{_sql_path(path)}' AS \"{_catalog(tier)}\" (READ_ONLY)")
                (versions[tier],) = con.execute(
                    f'SELECT version FROM "{_catalog(tier)}".meta.publication'
                ).fetchone()
            if len(set(versions.values())) == 1:
                table_tiers = _create_views(con, list(paths))
                for statement in LOCKDOWN:
                    con.execute(statement)
                return con, table_tiers
        except BaseException:
            con.close()
            raise
        con.close()
        time.sleep(0.05)
    raise RuntimeError(f"published tiers stay at different versions {versions}: a publication is broken")


def _create_views(con, tiers: list[str]) -> dict[str, str]:
    con.execute(f'CREATE SCHEMA "{PUBLISHED_SCHEMA}"')
    con.execute("CREATE SCHEMA meta")
    table_tiers = {}
    for tier in tiers:
        catalog = _catalog(tier)
        names = con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND schema_name = ? ORDER BY 1",
            [catalog, PUBLISHED_SCHEMA],
        ).fetchall()
        for (name,) in names:
            con.execute(
                f'CREATE VIEW "{PUBLISHED_SCHEMA}"."{name}" AS SELECT * FROM "{catalog}"."{PUBLISHED_SCHEMA}"."{name}"'
            )
            table_tiers[f"{PUBLISHED_SCHEMA}.{name}"] = tier
    con.execute(
        "CREATE VIEW meta.publication AS "
        + " UNION ALL ".join(
            f'SELECT tier, version, run_id, published_at, partitions, table_rows FROM "{_catalog(t)}".meta.publication'
            for t in tiers
        )
    )
    con.execute(f"SET search_path = '{PUBLISHED_SCHEMA},meta'")
    return table_tiers


def _catalog(tier: str) -> str:
    return f"citybrain_{tier}"


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")
