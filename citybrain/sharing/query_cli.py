"""``citybrain query`` and ``citybrain audit verify|query``: reads of the pool and of the audit log from the
shell, as a sharing token's account (``--token`` / ``$CITYBRAIN_SHARING_TOKEN``) or as the local operator
(``--local-operator``). ``add_identity_arguments`` and ``open_session`` give other commands (``citybrain
trace --key``) the same two identities.

Here rather than in orchestration/cli/ so the commands live beside the identity they need;
``add_commands`` hangs them on the main parser.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from citybrain.access.identity import TOKEN_ENV, AccessDenied
from citybrain.access.sql_guard import QueryRejected

MAX_ROWS_SHOWN = 40


def add_identity_arguments(parser: argparse.ArgumentParser) -> None:
    who = parser.add_mutually_exclusive_group()
    who.add_argument("--token", help=f"your sharing API token (default ${TOKEN_ENV}); you read your grants")
    who.add_argument(
        "--local-operator",
        action="store_true",
        help="the machine's owner: read every published tier, audited as operator:<OS login>",
    )
    # Retired: kept only to refuse it with the replacement named (citybrain.access.identity).
    parser.add_argument("--user", action=_RetiredUser, help=argparse.SUPPRESS)


class _RetiredUser(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        from citybrain.access.identity import REPLACEMENT

        parser.error(f"--user is no identity any more: {REPLACEMENT}")


def open_session(args: argparse.Namespace, via: str = "cli", tiers=None):
    from citybrain.sharing.session import connect

    return connect(args.token, local_operator=args.local_operator, tiers=tiers, via=via)


def _errors():
    from citybrain.access.query import TierNotPublished
    from citybrain.sharing.reader import NotPublished, ResultTooLarge

    return (
        AccessDenied,
        PermissionError,
        QueryRejected,
        TierNotPublished,
        NotPublished,
        ResultTooLarge,
        ValueError,
    )


def cmd_query(args: argparse.Namespace) -> int:
    import duckdb

    try:
        with open_session(args, tiers=args.tier) as session:
            if args.out:
                rows = session.export(args.sql, Path(args.out))
                print(f"{rows:,} rows written to {args.out}", file=sys.stderr)
            else:
                _print_table(session.query(args.sql), args.max_rows)
    except (*_errors(), duckdb.Error) as error:
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
    from citybrain.sharing.session import read_audit_log

    try:
        result = read_audit_log(args.sql, args.token, local_operator=args.local_operator)
    except _errors() as error:
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
    p = sub.add_parser("query", help="run one read-only SQL query on the published pool, within your grants")
    p.add_argument("sql", help="one SELECT/WITH query; tables are pool.<table> whatever their tier")
    add_identity_arguments(p)
    p.add_argument(
        "--tier",
        action="append",
        choices=["open", "conditional"],
        help="--local-operator only: only these tiers (repeatable)",
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
    v = audit_sub.add_parser("query", help="SQL over the audit log (table `audit`): auditor role or operator")
    v.add_argument("sql")
    add_identity_arguments(v)
    v.add_argument("--max-rows", type=int, default=MAX_ROWS_SHOWN)
    v.set_defaults(func=cmd_audit_query)
