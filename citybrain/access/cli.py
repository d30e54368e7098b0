"""``citybrain query`` and ``citybrain audit verify|query``: the analyst's and the auditor's commands.

Kept here rather than in orchestration/cli/ so the access layer has one home; ``add_commands`` hangs
them on the main parser.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from citybrain.access.grants import AccessDenied, GrantsError
from citybrain.access.sql_guard import QueryRejected

MAX_ROWS_SHOWN = 40


def cmd_query(args: argparse.Namespace) -> int:
    from citybrain.access.query import TierNotPublished, connect

    try:
        with connect(user=args.user, tiers=args.tier, via="cli") as session:
            if args.out:
                rows = session.export(args.sql, Path(args.out))
                print(f"{rows:,} rows written to {args.out}", file=sys.stderr)
            else:
                _print_table(session.query(args.sql), args.max_rows)
    except (AccessDenied, GrantsError, QueryRejected, TierNotPublished, ValueError) as error:
        print(f"citybrain query: {type(error).__name__}: {error}", file=sys.stderr)
        return 2
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from citybrain.access import audit

    result = audit.verify()
    path = audit.audit_path()
    if result.ok:
        print(f"{path}: {result.records} records, chain intact")
        return 0
    print(f"{path}: TAMPERED after {result.records} good records", file=sys.stderr)
    for problem in result.problems:
        print(f"  {problem}", file=sys.stderr)
    return 1


def cmd_audit_query(args: argparse.Namespace) -> int:
    from citybrain.access.audit_query import query_audit_log

    try:
        result = query_audit_log(args.sql, user=args.user)
    except (AccessDenied, GrantsError, QueryRejected) as error:
        print(f"citybrain audit query: {type(error).__name__}: {error}", file=sys.stderr)
        return 2
    _print_table(result, args.max_rows)
    return 0


def _print_table(table, max_rows: int) -> None:
    import duckdb

    with duckdb.connect() as con:
        print(con.from_arrow(table.slice(0, max_rows)))
    print(f"({table.num_rows:,} rows{'' if table.num_rows <= max_rows else f', first {max_rows} shown'})")


def add_commands(sub) -> None:
    p = sub.add_parser("query", help="run one read-only SQL query on the published tiers you are granted")
    p.add_argument("sql", help="one SELECT/WITH query; tables are pool.<table> whatever their tier")
    p.add_argument("--user", help="who you are (default: $CITYBRAIN_USER, else the OS login)")
    p.add_argument(
        "--tier", action="append", choices=["open", "conditional"], help="only these tiers (repeatable)"
    )
    output = p.add_mutually_exclusive_group()
    output.add_argument("--out", help="write the result to a .csv or .parquet file instead of printing it")
    output.add_argument("--table", action="store_true", help="print the result as a table (the default)")
    p.add_argument("--max-rows", type=int, default=MAX_ROWS_SHOWN, help="rows printed (default 40)")
    p.set_defaults(func=cmd_query)

    p = sub.add_parser("audit", help="audit log: verify its hash chain, or query it (auditors)")
    audit_sub = p.add_subparsers(dest="audit_command", required=True)
    v = audit_sub.add_parser("verify", help="check that no audit record was edited, inserted or deleted")
    v.set_defaults(func=cmd_audit_verify)
    v = audit_sub.add_parser("query", help="SQL over the audit log (table `audit`), for the auditor role")
    v.add_argument("sql")
    v.add_argument("--user")
    v.add_argument("--max-rows", type=int, default=MAX_ROWS_SHOWN)
    v.set_defaults(func=cmd_audit_query)
