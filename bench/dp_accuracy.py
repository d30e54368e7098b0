"""What differential privacy costs in accuracy, per indicator, on a built lake.

    python bench/dp_accuracy.py --home /tmp/dp/home [--epsilons 0.1 0.5 1 2 5] [--repeats 5] [--append]

Takes the pool tables that catalog/privacy.yaml's ``differential_privacy`` section names from the lake's
warehouse (built by ``citybrain demo``), and for each epsilon (per release of one period, replacing the
configured one; sensitivities, columns and derived ratios as configured) runs the real publication step
(``citybrain.privacy.dp.apply``) on a scratch copy, ``--repeats`` times with a fresh ledger, then compares
every noisy or recomputed column with the warehouse's true value:

* MAE: mean absolute error over the cells published in both (not suppressed);
* rel. err.: median of |noisy - true| / true over the cells that stay published and whose true count (for a
  ratio: the noisy count it is computed from) is at least k;
* total err.: |sum noisy - sum true| / sum true per period, averaged (what a city-wide total loses);
* changed: share of the truly published cells whose published value differs;
* newly suppressed: share of the truly published cells the noise pushed into 1..k-1 (now null).

Prints a Markdown table and, with ``--append``, appends it to bench/RESULTS.md. No target is asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def privacy_file(base: Path, epsilon: float, ledger: Path, out: Path) -> Path:
    """The lake's privacy settings with DP on at ``epsilon`` per period and a throw-away ledger."""
    settings = yaml.safe_load(base.read_text(encoding="utf-8"))
    section = settings["differential_privacy"]
    section["enabled"], section["ledger_dir"] = True, str(ledger)
    for table in section["tables"].values():
        table["epsilon"] = table["budget"] = epsilon
    out.write_text(yaml.safe_dump(settings, allow_unicode=True), encoding="utf-8")
    return out


def released_copy(warehouse: Path, tables: list[str]):
    con = duckdb.connect()
    con.execute(f"ATTACH '{warehouse}' AS warehouse (READ_ONLY)")
    con.execute("CREATE SCHEMA pool")
    con.execute("CREATE SCHEMA meta")
    for table in tables:
        con.execute(f'CREATE TABLE pool."{table}" AS SELECT * FROM warehouse.pool."{table}"')
    return con


def errors(con, policy, column: str, base: str, k: int) -> dict[str, float]:
    """Accuracy of one column of the scratch copy against the warehouse; the relative error is taken over
    the cells whose true ``base`` count (the column itself, or the noisy count a ratio is computed from)
    is at least k."""
    join = " AND ".join(f'n."{c}" IS NOT DISTINCT FROM t."{c}"' for c in (*policy.key, policy.period_column))
    row = con.execute(
        f"""
        WITH pairs AS (
            SELECT t."{policy.period_column}" AS period, t."{column}"::DOUBLE AS truth, n."{column}"::DOUBLE AS noisy,
                t."{base}"::DOUBLE AS base
            FROM warehouse.pool."{policy.table}" AS t JOIN pool."{policy.table}" AS n ON {join}
            WHERE t."{column}" IS NOT NULL
        ), totals AS (
            SELECT abs(sum(coalesce(noisy, 0)) - sum(truth)) / nullif(sum(truth), 0) AS total FROM pairs GROUP BY period
        )
        SELECT
            count(*),
            avg(abs(noisy - truth)),
            median(abs(noisy - truth) / truth) FILTER (WHERE base >= {k} AND truth > 0 AND noisy IS NOT NULL),
            (SELECT avg(total) FROM totals),
            avg(CASE WHEN noisy IS NULL OR abs(noisy - truth) > 1e-9 * greatest(abs(truth), 1) THEN 1 ELSE 0 END),
            avg(CASE WHEN noisy IS NULL THEN 1 ELSE 0 END),
            avg(truth)
        FROM pairs
        """
    ).fetchone()
    keys = ("cells", "mae", "rel", "total", "changed", "suppressed", "mean")
    return dict(zip(keys, (float("nan") if v is None else float(v) for v in row), strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=Path(os.environ.get("CITYBRAIN_HOME") or REPO / "data"))
    parser.add_argument("--epsilons", type=float, nargs="+", default=[0.1, 0.5, 1.0, 2.0, 5.0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--privacy", type=Path, default=REPO / "catalog" / "privacy.yaml")
    parser.add_argument("--append", action="store_true", help="append the table to bench/RESULTS.md")
    args = parser.parse_args()
    warehouse = (args.home / "warehouse.duckdb").resolve()
    if not warehouse.exists():
        sys.exit(f"no warehouse in {args.home}: build a lake first (citybrain demo)")
    os.environ["CITYBRAIN_HOME"] = str(args.home.resolve())

    from citybrain.privacy import dp
    from citybrain.privacy.config import small_cell_k

    rows, timings = [], {}
    with tempfile.TemporaryDirectory(prefix="dp_accuracy_") as scratch:
        scratch = Path(scratch)
        for epsilon in args.epsilons:
            results: dict[tuple[str, str], list[dict]] = {}
            for repeat in range(args.repeats):
                os.environ["CITYBRAIN_PRIVACY"] = str(
                    privacy_file(
                        args.privacy, epsilon, scratch / f"ledger-{epsilon}-{repeat}", scratch / "p.yaml"
                    )
                )
                config, k = dp.dp_settings(), small_cell_k()
                con = released_copy(warehouse, list(config.tables))
                try:
                    started = time.monotonic()
                    dp.apply(con, "pool", list(config.tables), "bench", f"bench-{epsilon}-{repeat}")
                    timings.setdefault(epsilon, []).append(time.monotonic() - started)
                    for policy in config.tables.values():
                        noisy = [c.name for c in policy.columns]
                        bases = {c: c for c in noisy} | {
                            d.name: d.numerator if d.numerator in noisy else d.denominator
                            for d in policy.derived
                        }
                        for column, base in bases.items():
                            measured = errors(con, policy, column, base, k)
                            results.setdefault((policy.table, column), []).append(measured)
                finally:
                    con.close()
            for (table, column), runs in results.items():
                mean = {key: statistics.fmean(r[key] for r in runs) for key in runs[0]}
                rows.append((epsilon, table, column, mean))
        with duckdb.connect(str(warehouse), read_only=True) as con:
            sizes = {
                t: con.execute(f'SELECT count(*) FROM pool."{t}"').fetchone()[0]
                for t in dp.dp_settings().tables
            }

    lines = [
        "## dp_accuracy",
        "",
        f"**{args.home}** — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
        f"{platform.python_version()}; rows: " + ", ".join(f"{t} {n:,}" for t, n in sizes.items()) + f"; "
        f"k = {k}; mean of {args.repeats} releases per epsilon (epsilon per table and period, "
        "split over its noisy columns; sensitivities as in catalog/privacy.yaml)",
        "",
        "| ε | table.column | cells | mean true | MAE | rel. err. (median, count ≥ k) | total err. | changed | newly suppressed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for epsilon, table, column, m in rows:
        lines.append(
            f"| {epsilon:g} | {table}.{column} | {m['cells']:,.0f} | {m['mean']:,.1f} | {m['mae']:,.2f} | "
            f"{m['rel']:.1%} | {m['total']:.2%} | {m['changed']:.1%} | {m['suppressed']:.1%} |"
        )
    lines += [
        "",
        "Time of the DP step (noise for every period, ledger, write-back), per release: "
        + ", ".join(f"ε {e:g}: {statistics.fmean(t):.2f} s" for e, t in timings.items()),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.append:
        with open(REPO / "bench" / "RESULTS.md", "a", encoding="utf-8") as handle:
            handle.write("\n" + text)


if __name__ == "__main__":
    main()
