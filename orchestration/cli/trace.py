"""``citybrain trace``: the deliveries, runs and checks behind a published table, day or row."""

from __future__ import annotations

import argparse
import sys


def cmd_trace(args: argparse.Namespace) -> int:
    import json
    from contextlib import nullcontext
    from dataclasses import asdict

    from citybrain.lineage.trace import TraceError, format_trace, trace
    from citybrain.sharing.query_cli import open_session

    key = None
    if args.key:
        pairs = [k.partition("=") for k in args.key]
        if any(not sep or not column for column, sep, _ in pairs):
            print("citybrain trace: --key takes COLUMN=VALUE", file=sys.stderr)
            return 2
        key = {column: value for column, _, value in pairs}
    try:
        with open_session(args, via="trace") if key else nullcontext() as session:
            result = trace(args.table, day=args.date, key=key, session=session)
    except (TraceError, PermissionError) as error:
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
    from citybrain.sharing.query_cli import add_identity_arguments

    add_identity_arguments(p)  # who reads the row for --key: a token's grants, or --local-operator
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_trace)
