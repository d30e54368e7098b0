"""Is a feed overdue? The one rule, read by the Dagster ``freshness`` check and by ``citybrain status``.

A feed is overdue when the newest delivery that brought new data is older than its catalog
``Feed.max_age_hours`` (the cadence plus ``GRACE_SHARE`` of grace), or when it never brought any.
:func:`judge` is that rule; both readers call it, so the UI and ``citybrain status`` cannot disagree on
what "overdue" means or where the boundary lies.

What differs is only *where* "the newest new data" is read, and that is on purpose:

- ``citybrain status`` reads the warehouse's ``raw.ingestion_log`` (:func:`last_new_data`, the SQL in
  ``sql/last_new_data.sql``): it opens the warehouse anyway and says when a writer holds it.
- The live Dagster check (``assets/freshness.py``) reads the Dagster event log: each raw materialisation
  carries ``rows_received`` (the same count ingestion writes to the log). That check runs in the
  check-only runs the freshness sensor launches at any time of day, also while a nightly run writes the
  warehouse for minutes; DuckDB allows one writer process per file and refuses even read-only connections
  meanwhile, so a check reading the warehouse would wait on the writer lock or fail. A non-blocking
  warning must never do either.

Why not a dbt model: "overdue" is a question about *now*, which a table answers only as of its last build
(and an ingestion run started by the landing sensor builds nothing), and the live check could not read it
for the reason above. What dbt does compute is a different measure, the *lateness of each day* in
``quality_scorecard_feed_daily.sql`` (history for the scorecards); it takes the same ``max_age_hours``
from ``reference.feeds``, which is written from this catalog field.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb


@dataclass(frozen=True)
class Freshness:
    """A feed's freshness as of ``now`` (all times are POSIX seconds)."""

    max_age_hours: float
    now: float
    last_new_data: float | None  # when the newest delivery with new data arrived; None: never

    @property
    def lower_bound(self) -> float:
        """New data older than this is too old."""
        return self.now - self.max_age_hours * 3600

    @property
    def overdue(self) -> bool:
        return self.last_new_data is None or self.last_new_data < self.lower_bound

    @property
    def age_hours(self) -> float | None:
        return None if self.last_new_data is None else (self.now - self.last_new_data) / 3600

    @property
    def overdue_hours(self) -> float | None:
        """How far past its allowed age the feed is (None while fresh or when it never delivered)."""
        if self.last_new_data is None or not self.overdue:
            return None
        return (self.lower_bound - self.last_new_data) / 3600

    @property
    def fresh_until(self) -> float | None:
        """When a fresh feed turns overdue if nothing new arrives (None when it is overdue already)."""
        return None if self.overdue else self.last_new_data + self.max_age_hours * 3600


def judge(last_new_data: float | None, max_age_hours: float, now: float) -> Freshness:
    """The rule: overdue once the newest new data is older than ``max_age_hours`` (or there is none)."""
    return Freshness(max_age_hours=max_age_hours, now=now, last_new_data=last_new_data)


def last_new_data(con: duckdb.DuckDBPyConnection) -> dict[str, datetime]:
    """feed id -> when its newest delivery with new data finished, from ``raw.ingestion_log``."""
    sql = (
        resources.files("citybrain.quality").joinpath("sql", "last_new_data.sql").read_text(encoding="utf-8")
    )
    return dict(con.execute(sql).fetchall())
