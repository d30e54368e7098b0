"""An open user's attack on small-cell suppression, written from first principles for the tests.

Nothing here imports the pipeline's suppression (dbt macros) or its check (citybrain/quality/small_cells.py):
plain SQL over a published open-tier file and the true values, so the tests judge the pipeline by what a
recipient could compute. k is read from catalog/privacy.yaml by the tests (the setting, not the code).

* ``small_published_values``: every published count of people or trips above 0 and below k;
* ``recoverable_groups``: for each margin group, the true total minus the published cells (= the sum of the
  hidden cells); a group hiding exactly one cell gives it away, and one whose hidden cells sum to less than k
  tells that each of them is small.
"""

from __future__ import annotations

import re

import duckdb
import pandas as pd

# A column counts people or trips when its name says so; ratios and shares are not counts.
COUNT_NAME = re.compile(r"(population|residents|children|employees|people|persons|subscribers|trips)$")
NOT_A_COUNT = re.compile(r"(_per_|^share_|_suppressed$)")


def count_columns(con: duckdb.DuckDBPyConnection, schema: str = "pool") -> dict[str, list[str]]:
    """Numeric columns named like counts of people or trips, per table of ``schema``."""
    rows = con.execute(
        "SELECT table_name, column_name FROM duckdb_columns() WHERE schema_name = ? "
        "AND (data_type IN ('BIGINT', 'INTEGER', 'DOUBLE', 'FLOAT', 'HUGEINT') OR data_type LIKE 'DECIMAL%') "
        "ORDER BY table_name, column_index",
        [schema],
    ).fetchall()
    found: dict[str, list[str]] = {}
    for table, column in rows:
        if COUNT_NAME.search(column) and not NOT_A_COUNT.search(column):
            found.setdefault(table, []).append(column)
    return found


def small_published_values(con: duckdb.DuckDBPyConnection, k: int, schema: str = "pool") -> list[tuple]:
    """(table, column, value) for every published count above 0 and below k."""
    found = []
    for table, columns in count_columns(con, schema).items():
        for column in columns:
            values = con.execute(
                f'SELECT DISTINCT "{column}" FROM {schema}."{table}" WHERE "{column}" > 0 AND "{column}" < ?',
                [k],
            ).fetchall()
            found += [(table, column, v[0]) for v in values]
    return found


def recoverable_groups(
    truth: pd.DataFrame, published: pd.DataFrame, key: list[str], value: str, group: list[str], k: int
) -> pd.DataFrame:
    """Groups of ``group`` where the true total minus the published cells reveals a hidden cell.

    ``truth``: every cell with its true ``value``; ``published``: the published rows (``value`` null where
    hidden; a cell missing from it is hidden too)."""
    shown = published[key + [value]].rename(columns={value: "published_value"})
    cells = truth[key + [c for c in group if c not in key] + [value]].merge(shown, on=key, how="left")
    cells["hidden"] = cells["published_value"].isna()
    per_group = cells.groupby(group, dropna=False).agg(
        true_total=(value, "sum"),
        published_total=("published_value", "sum"),
        hidden_cells=("hidden", "sum"),
    )
    # What the attacker computes: the total minus what is published.
    per_group["recovered_hidden_sum"] = per_group["true_total"] - per_group["published_total"]
    bad = (per_group["hidden_cells"] == 1) | (
        (per_group["hidden_cells"] > 1) & (per_group["recovered_hidden_sum"] < k - 1e-9)
    )
    return per_group[bad].reset_index()


PRESENCE_KEY = ["grid_id", "hour_start"]
OD_KEY = ["stat_date", "origin_district_code", "destination_district_code"]


def open_tier_findings(open_file, warehouse, k: int, night_hours: list[int]) -> dict:
    """Everything an open user could recover from a published open tier, judged against the true values in
    the warehouse (the fused facts before suppression, for the published days). Empty lists = protected.

    * ``small``: published counts above 0 and below k, in any open table;
    * ``presence`` / ``od_by_origin`` / ``od_by_destination``: margin groups of the facts that give a hidden
      cell away (true total minus published cells);
    * ``district_residents``: across tables. ``ind_district_monthly.est_resident_population`` times the
      month's night hours is the district's night person-hours. Minus the published night cells of
      ``fct_presence_hourly``, that is what an open user learns about the hidden ones: there must be at
      least two, summing to at least k. ``recovered_matches_truth`` shows the attack computes the true
      hidden sum, so the protection, not a mistake in the attack, is what stops it.
    """
    hours = ", ".join(str(h) for h in night_hours)
    with duckdb.connect(str(open_file), read_only=True) as con:
        small = small_published_values(con, k)
        presence = con.execute("SELECT * FROM pool.fct_presence_hourly").df()
        od = con.execute("SELECT * FROM pool.fct_od_daily").df()
        residents = con.execute(
            f"""WITH night AS (
                    SELECT * FROM pool.fct_presence_hourly
                    WHERE hour(timezone('Asia/Shanghai', hour_start)) IN ({hours})),
                hours AS (
                    SELECT CAST(date_trunc('month', stat_date) AS DATE) AS month, count(DISTINCT hour_start) AS n
                    FROM night GROUP BY 1),
                cells AS (
                    SELECT district_code, CAST(date_trunc('month', stat_date) AS DATE) AS month,
                           coalesce(sum(est_population), 0) AS shown,
                           count(*) FILTER (WHERE est_population IS NULL) AS hidden
                    FROM night GROUP BY 1, 2)
                SELECT c.district_code, c.month, c.hidden, i.est_resident_population * h.n - c.shown AS recovered
                FROM cells AS c JOIN hours AS h USING (month)
                JOIN pool.ind_district_monthly AS i USING (district_code, month)
                WHERE i.est_resident_population IS NOT NULL"""
        ).df()
    days = sorted({str(d)[:10] for d in presence["stat_date"]})
    in_days = ", ".join(f"DATE '{d}'" for d in days)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        true_presence = con.execute(
            f"SELECT * FROM pool.fct_presence_hourly_unsuppressed WHERE stat_date IN ({in_days})"
        ).df()
        true_od = con.execute(
            f"SELECT * FROM pool.fct_od_daily_unsuppressed WHERE stat_date IN ({in_days})"
        ).df()
    hidden_cells = presence.loc[presence["est_population"].isna(), PRESENCE_KEY]
    night = true_presence[
        true_presence["hour_start"].dt.tz_convert("Asia/Shanghai").dt.hour.isin(night_hours)
    ]
    hidden_truth = night.merge(hidden_cells, on=PRESENCE_KEY)
    hidden_truth["month"] = pd.to_datetime(hidden_truth["stat_date"]).dt.to_period("M").dt.to_timestamp()
    true_hidden = hidden_truth.groupby(["district_code", "month"])["est_population"].sum()
    residents["month"] = pd.to_datetime(residents["month"])
    residents = residents.join(true_hidden.rename("true_hidden_sum"), on=["district_code", "month"])
    residents["true_hidden_sum"] = residents["true_hidden_sum"].fillna(0.0)
    leaking = residents[
        (residents["hidden"] == 1) | ((residents["hidden"] > 1) & (residents["recovered"] < k - 1e-6))
    ]
    return {
        "small": small,
        "presence": recoverable_groups(true_presence, presence, PRESENCE_KEY, "est_population",
                                       ["district_code", "hour_start"], k),
        "od_by_origin": recoverable_groups(true_od, od, OD_KEY, "est_trips", ["stat_date", "origin_district_code"], k),
        "od_by_destination": recoverable_groups(true_od, od, OD_KEY, "est_trips",
                                                ["stat_date", "destination_district_code"], k),
        "district_residents": leaking,
        "recovered_matches_truth": bool(
            ((residents["recovered"] - residents["true_hidden_sum"]).abs()
             <= 1e-6 * residents["recovered"].abs().clip(lower=1)).all()
        ),
        "hidden_presence_cells": int(presence["est_population"].isna().sum()),
        "presence_cells": len(presence),
    }  # fmt: skip
