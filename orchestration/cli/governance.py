"""``citybrain governance check`` and ``citybrain resources export``: the pool's classification, and the
resource catalog (政务数据资源目录) published beside it."""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_governance_check(args: argparse.Namespace) -> int:
    from citybrain.governance.classification import main as check_classification

    return check_classification()


def cmd_resources_export(args: argparse.Namespace) -> int:
    from citybrain.resource_catalog.export import export_resource_catalog

    result = export_resource_catalog(Path(args.out) if args.out else None)
    print(f"resource catalog: {len(result.catalog.resources)} resources -> {result.directory / 'current'}")
    for kind, path in result.files.items():
        print(f"  {kind:<10}{path}")
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("governance", help="data governance tools")
    governance_sub = p.add_subparsers(dest="governance_command", required=True)
    v = governance_sub.add_parser("check", help="compile the dbt project and check the pool's classification")
    v.set_defaults(func=cmd_governance_check)

    p = sub.add_parser("resources", help="resource catalog (政务数据资源目录) tools")
    resources_sub = p.add_subparsers(dest="resources_command", required=True)
    v = resources_sub.add_parser("export", help="write the resource catalog as CSV, JSON and HTML")
    v.add_argument("--out", help="export directory (default: $CITYBRAIN_HOME/catalog_export)")
    v.set_defaults(func=cmd_resources_export)
