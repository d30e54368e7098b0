"""Run history for the resource catalog: what was published, delivered and checked, read tolerantly.

Three places hold it, and any of them may be missing (a new lake has none):

- ``publications.jsonl`` beside the published pool: one line per published version (version,
  published_at, run_id, tables). The format is read through :func:`publication_tables`, which also
  accepts per-tier records (a ``tier`` field, ``tables`` nested by tier, or a ``tiers`` mapping);
- the warehouse (read-only): ``raw.ingestion_log`` (deliveries) and ``quality.expectation_results``
  (every expectation outcome of every run). Fresher than the publication, but a writer may hold it;
- the latest published version file: its ``meta.deliveries`` and ``meta.check_results`` are the same
  facts as of the publishing run, used when the warehouse cannot be read.

Suite scores are counted by the scorecards' rule (``dbt_project/macros/expectation_scores.sql``, rendered
here by :func:`scores_sql`), not read from the scorecard tables: those score the raw suites per day and
are built before the pool's checks of the same run; the catalog scores every suite per run.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from citybrain.dbt_paths import DBT_PROJECT_DIR
from citybrain.warehouse import Warehouse

if TYPE_CHECKING:
    import duckdb


@dataclass(frozen=True)
class TableRelease:
    """The latest publication that contains a pool table."""

    version: str
    published_at: str
    run_id: str
    rows: int | None
    tiers: tuple[str, ...] = ()


@dataclass(frozen=True)
class FeedDeliveries:
    """The deliveries of a feed currently loaded in the raw layer."""

    last_delivery_at: str | None
    rows: int
    deliveries: int


@dataclass(frozen=True)
class SuiteScore:
    """One expectation suite's outcomes in one run."""

    suite: str
    run_id: str
    evaluated_at: str | None
    evaluated: int
    passed: int
    blocking_failed: int

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.evaluated if self.evaluated else None


@dataclass
class RunHistory:
    publications: list[dict] = field(default_factory=list)
    tables: dict[str, TableRelease] = field(default_factory=dict)
    feeds: dict[str, FeedDeliveries] = field(default_factory=dict)
    # suite -> {run_id -> score}
    scores: dict[str, dict[str, SuiteScore]] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)  # what was read, for the export's provenance
    # table -> per-period differential-privacy budget of the latest open version (meta.privacy_budget)
    privacy: dict[str, list[dict]] = field(default_factory=dict)
    # table -> re-identification risk measured by its latest publication (None: not measured)
    reidentification: dict[str, dict | None] = field(default_factory=dict)
    # table -> its hold in the latest publication (held back: stale; citybrain/staleness.py), if any
    stale: dict[str, dict] = field(default_factory=dict)

    def latest_score(self, suite: str, prefer_run: str | None = None) -> SuiteScore | None:
        """The suite's outcomes in ``prefer_run`` if it checked the suite, else in its latest run."""
        runs = self.scores.get(suite) or {}
        if prefer_run and prefer_run in runs:
            return runs[prefer_run]
        if not runs:
            return None
        return max(runs.values(), key=lambda s: (s.evaluated_at or "", s.run_id))


# --- publications.jsonl ---------------------------------------------------------------------------


def read_publications(path: Path) -> list[dict]:
    """Every record of a publications log, skipping lines that are not JSON objects."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def _table_name(key: str) -> str:
    """``pool.dim_grid`` / ``open.pool.dim_grid`` / ``dim_grid`` -> ``dim_grid``."""
    return key.rsplit(".", 1)[-1]


def publication_tables(record: dict) -> dict[str, tuple[int | None, tuple[str, ...]]]:
    """table name -> (rows, tiers) of one publication record, whatever shape its tables have.

    Accepted: ``tables: {"pool.t": 12}``; ``tables: {"open": {"pool.t": 12}, ...}`` (tables per tier);
    ``tiers: {"open": {"tables": {...}}, ...}`` or ``tiers: [{"tier": "open", "tables": {...}}]``;
    a top-level ``tier`` names the tier of a flat ``tables``."""
    found: dict[str, tuple[int | None, tuple[str, ...]]] = {}

    def add(tables: object, tier: str | None) -> None:
        if isinstance(tables, list):
            tables = {str(t): None for t in tables}
        if not isinstance(tables, dict):
            return
        for key, value in tables.items():
            if isinstance(value, dict):
                add(value, str(key))  # nested by tier
                continue
            rows = value if isinstance(value, int) and not isinstance(value, bool) else None
            name = _table_name(str(key))
            old_rows, old_tiers = found.get(name, (None, ()))
            tiers = old_tiers + ((tier,) if tier and tier not in old_tiers else ())
            best = max((r for r in (old_rows, rows) if r is not None), default=None)
            found[name] = (best, tiers)

    top_tier = record.get("tier")
    add(record.get("tables"), str(top_tier) if top_tier else None)
    tiers = record.get("tiers")
    if isinstance(tiers, dict):
        for tier, entry in tiers.items():
            add(entry.get("tables") if isinstance(entry, dict) else entry, str(tier))
    elif isinstance(tiers, list):
        for entry in tiers:
            if isinstance(entry, dict):
                add(entry.get("tables"), str(entry.get("tier") or entry.get("name") or "") or None)
    return found


def latest_releases(records: list[dict]) -> dict[str, TableRelease]:
    """For every table, the latest publication that contains it (by published_at, then log order)."""
    ordered = sorted(enumerate(records), key=lambda ir: (str(ir[1].get("published_at") or ""), ir[0]))
    releases: dict[str, TableRelease] = {}
    for _, record in ordered:
        for name, (rows, tiers) in publication_tables(record).items():
            releases[name] = TableRelease(
                version=str(record.get("version") or ""),
                published_at=str(record.get("published_at") or ""),
                run_id=str(record.get("run_id") or ""),
                rows=rows,
                tiers=tiers,
            )
    return releases


def latest_risks(records: list[dict]) -> dict[str, dict | None]:
    """For every table, the re-identification risk its latest publication recorded (``reidentification``
    of the record, citybrain/governance/publication_gate.py), None when that publication did not measure it."""
    ordered = sorted(enumerate(records), key=lambda ir: (str(ir[1].get("published_at") or ""), ir[0]))
    risks: dict[str, dict | None] = {}
    for _, record in ordered:
        measured = record.get("reidentification") if isinstance(record.get("reidentification"), dict) else {}
        for name in publication_tables(record):
            risks[name] = measured.get(name)
    return risks


def latest_stale(records: list[dict]) -> dict[str, dict]:
    """The tables the latest publication held back (its ``stale`` records, citybrain/staleness.py), each with
    ``content_published_at``: when the version whose content it keeps was published."""
    if not records:
        return {}
    ordered = sorted(enumerate(records), key=lambda ir: (str(ir[1].get("published_at") or ""), ir[0]))
    latest = ordered[-1][1]
    published_at = {str(r.get("version")): str(r.get("published_at") or "") for r in records}
    stale = latest.get("stale") if isinstance(latest.get("stale"), dict) else {}
    return {
        _table_name(key): {**hold, "content_published_at": published_at.get(str(hold.get("kept_version")))}
        for key, hold in stale.items()
        if isinstance(hold, dict)
    }


def _version_files(records: list[dict]) -> list[Path]:
    """Published version files named by the log, newest first (``path``, ``paths`` or per-tier paths)."""
    paths: list[Path] = []
    for record in sorted(records, key=lambda r: str(r.get("published_at") or ""), reverse=True):
        candidates: list[object] = [record.get("path")]
        extra = record.get("paths")
        candidates += list(extra.values()) if isinstance(extra, dict) else list(extra or [])
        tiers = record.get("tiers")
        entries = tiers.values() if isinstance(tiers, dict) else tiers if isinstance(tiers, list) else []
        candidates += [e.get("path") for e in entries if isinstance(e, dict)]
        paths += [Path(str(c)) for c in candidates if c]
    return paths


# --- DuckDB reads ----------------------------------------------------------------------------------

_LOG_SQL = """
SELECT feed_id, max(finished_at)::VARCHAR, coalesce(sum(rows_loaded), 0), count(*)
FROM raw.ingestion_log WHERE status = 'loaded' GROUP BY feed_id
"""
_META_DELIVERIES_SQL = """
SELECT feed_id, max(loaded_at)::VARCHAR, coalesce(sum(rows_loaded), 0), count(*)
FROM meta.deliveries GROUP BY feed_id
"""


def _has_table(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?", [schema, table]
        ).fetchone()[0]
    )


def scores_sql(table: str) -> str:
    """The per-suite, per-run score query over ``table``: ``sql/suite_scores.sql`` with the scoring rule
    of the scorecards (``dbt_project/macros/expectation_scores.sql``), rendered by plain Jinja."""
    from jinja2 import Environment, FileSystemLoader

    loader = FileSystemLoader([str(Path(__file__).with_name("sql")), str(DBT_PROJECT_DIR / "macros")])
    return Environment(loader=loader).get_template("suite_scores.sql").render(table=table)


def _read_scores(con, table: str) -> dict[str, dict[str, SuiteScore]]:
    scores: dict[str, dict[str, SuiteScore]] = {}
    for suite, run_id, at, evaluated, passed, blocking, _warnings in con.execute(
        scores_sql(table)
    ).fetchall():
        scores.setdefault(suite, {})[run_id] = SuiteScore(suite, run_id, at, evaluated, passed, blocking)
    return scores


def _read_deliveries(con, sql: str) -> dict[str, FeedDeliveries]:
    return {feed: FeedDeliveries(at, int(rows), int(n)) for feed, at, rows, n in con.execute(sql).fetchall()}


def _read_warehouse(path: Path, history: RunHistory) -> bool:
    """The warehouse's ingestion log and check results. Does not take the writer lock: the Dagster asset
    holds it around the whole export; from the command line a writer makes DuckDB refuse, and then the
    publication's copy is read instead."""
    import duckdb

    with ExitStack() as stack:
        try:
            con = stack.enter_context(Warehouse.from_settings(path).connect(read_only=True, locked=False))
        except duckdb.Error:
            return False  # a writer holds it, or it is not a DuckDB file: the publication's copy will do
        read = False
        if _has_table(con, "raw", "ingestion_log"):
            history.feeds = _read_deliveries(con, _LOG_SQL)
            read = True
        if _has_table(con, "quality", "expectation_results"):
            history.scores = _read_scores(con, "quality.expectation_results")
            read = True
        return read


def _read_version_meta(path: Path, history: RunHistory) -> bool:
    import duckdb

    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error:
        return False
    try:
        read = False
        if not history.feeds and _has_table(con, "meta", "deliveries"):
            history.feeds = _read_deliveries(con, _META_DELIVERIES_SQL)
            read = True
        if not history.scores and _has_table(con, "meta", "check_results"):
            history.scores = _read_scores(con, "meta.check_results")
            read = True
        return read
    finally:
        con.close()


def _read_privacy_budget(version_files: list[Path]) -> dict[str, list[dict]]:
    """The differential-privacy budget recorded in the newest open version (none when DP is off)."""
    import duckdb

    for path in version_files:
        if path.parent.parent.name != "open" or not path.exists():
            continue
        try:
            con = duckdb.connect(str(path), read_only=True)
        except duckdb.Error:
            continue
        try:
            if not _has_table(con, "meta", "privacy_budget"):
                return {}
            budget: dict[str, list[dict]] = {}
            for table, period, epsilon, spent_total, limit in con.execute(
                "SELECT table_name, period, epsilon, spent_total, budget FROM meta.privacy_budget ORDER BY 1, 2"
            ).fetchall():
                budget.setdefault(table, []).append(
                    {"period": period, "epsilon": epsilon, "spent_total": spent_total, "budget": limit}
                )
            return budget
        finally:
            con.close()
    return {}


def load_history(
    publications_log: Path, warehouse: Path | None = None, live_pool: Path | None = None
) -> RunHistory:
    """Everything the catalog needs from past runs; empty parts where a file does not exist yet."""
    history = RunHistory()
    history.publications = read_publications(publications_log)
    history.tables = latest_releases(history.publications)
    history.reidentification = latest_risks(history.publications)
    history.stale = latest_stale(history.publications)
    if history.publications:
        history.sources.append(str(publications_log))
    if warehouse is not None and warehouse.exists() and _read_warehouse(warehouse, history):
        history.sources.append(str(warehouse))
    history.privacy = _read_privacy_budget(_version_files(history.publications))
    if not history.feeds or not history.scores:
        candidates = _version_files(history.publications) + ([live_pool] if live_pool else [])
        for path in candidates:
            if path.exists() and _read_version_meta(path, history):
                history.sources.append(str(path))
                break
    return history
