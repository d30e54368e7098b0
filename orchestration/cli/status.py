"""``citybrain status``: latest runs, failed checks, quarantined rows, overdue feeds (orchestration/status.py,
which does not import the CLI)."""

from __future__ import annotations

import argparse


def cmd_status(args: argparse.Namespace) -> int:
    from orchestration.status import main as status_main

    return status_main(as_json=args.json)


def add_commands(sub) -> None:
    p = sub.add_parser("status", help="latest runs, failed checks, quarantined rows, overdue feeds")
    p.add_argument("--json", action="store_true", help="machine-readable output for scripts")
    p.set_defaults(func=cmd_status)
