"""``citybrain sharing delivery ...``: table delivery targets, a delivery run by hand, the delivery records.

All three are the local operator mode (docs/SHARING.md, "Who is acting"): whoever can reach the sharing
database from this machine; setting a target is audited as ``operator:<OS login>``. The nightly deliveries
run in the ``sharing_delivery`` asset; ``run`` does the same now (after fixing a consumer database, say).
"""

from __future__ import annotations

import argparse
import json
import sys


def cmd(args: argparse.Namespace) -> int:
    from citybrain.sharing.config import SharingConfigError
    from citybrain.sharing.delivery_targets import TargetError

    try:
        return {"target": _target, "run": _run, "list": _list}[args.delivery_command](args)
    except (TargetError, SharingConfigError, ValueError) as error:
        print(f"citybrain sharing delivery: {type(error).__name__}: {error}", file=sys.stderr)
        return 2


def _operator() -> str:
    """The local operator, named by the OS account running the command (``citybrain.access.identity``)."""
    from citybrain.access.identity import operator_identity

    return operator_identity()


def _target(args) -> int:
    from citybrain.sharing.delivery_targets import set_target
    from citybrain.sharing.store import open_store

    target_id = set_target(
        open_store(),
        url=args.url,
        grant_id=args.grant,
        department=args.department,
        password_env=args.password_env,
        schema=args.schema,
        by=_operator(),
    )
    print(f"delivery target {target_id} set")
    return 0


def _run(args) -> int:
    from citybrain.sharing.delivery import deliver_all
    from citybrain.sharing.store import open_store

    results = deliver_all(open_store())
    for r in results:
        days = "whole table" if r.days is None else ",".join(r.days)
        print(
            f"grant {r.grant_id}: {r.status} {r.rows} rows ({days}) version {r.version} to {r.target}"
            + (f" after {r.attempts} attempt(s): {r.error}" if r.error else "")
        )
    if not results:
        print("no active table grants")
    return 1 if any(r.status == "failed" for r in results) else 0


def _list(args) -> int:
    from citybrain.sharing.delivery import delivery_records
    from citybrain.sharing.store import open_store

    for record in delivery_records(open_store(), grant_id=args.grant, limit=args.limit):
        print(json.dumps(record, ensure_ascii=False, default=str))
    return 0


def add_commands(sharing_subparsers) -> None:
    d = sharing_subparsers.add_parser(
        "delivery", help="table delivery (库表): targets, run, records (operator)"
    )
    d.set_defaults(func=cmd)
    d_sub = d.add_subparsers(dest="delivery_command", required=True)

    t = d_sub.add_parser("target", help="set where a grant's (or a department's) tables are delivered")
    which = t.add_mutually_exclusive_group(required=True)
    which.add_argument("--grant", type=int, help="for this grant only")
    which.add_argument("--department", help="default for the grants of this consumer department")
    t.add_argument(
        "--url", required=True, help="SQLAlchemy URL without password, e.g. postgresql://u@host/db"
    )
    t.add_argument("--password-env", help="environment variable holding the password (never stored)")
    t.add_argument("--schema", help="schema (PostgreSQL) or database (MySQL/MariaDB) of the tables")

    d_sub.add_parser("run", help="deliver every active table grant now (exit 1 if any failed)")

    ls = d_sub.add_parser("list", help="delivery records, newest first, as JSON lines")
    ls.add_argument("--grant", type=int)
    ls.add_argument("--limit", type=int, default=50)
