"""``citybrain trace``: the deliveries, runs and checks behind a published table, day or row."""

from __future__ import annotations

import argparse
import sys


def cmd_trace(args: argparse.Namespace) -> int:
    import json
    from dataclasses import asdict

    from citybrain.access.grants import AccessDenied
    from citybrain.lineage.trace import TraceError, format_trace, trace

    key = None
    if args.key:
        pairs = [k.partition("=") for k in args.key]
        if any(not sep or not column for column, sep, _ in pairs):
            print("citybrain trace: --key takes COLUMN=VALUE", file=sys.stderr)
            return 2
        key = {column: value for column, _, value in pairs}
    try:
        result = trace(args.table, day=args.date, key=key, user=args.user)
    except (TraceError, AccessDenied) as error:
        print(f"citybrain trace: {error}", file=sys.stderr)
        return 2
    print(
        json.dumps(asdict(result), ensure_ascii=False, indent=2, default=str)
        if args.json
        else format_trace(result)
    )
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("trace", help="the deliveries, runs and checks behind a published table, day or row")
    p.add_argument("table", help="pool.<table>")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--date", help="one day of a daily table (YYYY-MM-DD)")
    which.add_argument(
        "--key", action="append", metavar="COLUMN=VALUE", help="the row whose day is traced (repeatable)"
    )
    p.add_argument("--user", help="who reads the row for --key (grants and audit apply)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_trace)
