"""``citybrain catalog validate`` and ``citybrain landing check``: the source catalog and what is delivered
against it."""

from __future__ import annotations

import argparse
import sys

from citybrain import settings


def cmd_catalog_validate(args: argparse.Namespace) -> int:
    from citybrain.catalog import CatalogError, load_catalog

    try:
        catalog = load_catalog(args.path)
    except CatalogError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(
        f"{args.path or settings.catalog_path()}: {len(catalog.feeds)} feeds, {len(catalog.providers)} providers: OK"
    )
    return 0


def cmd_landing_check(args: argparse.Namespace) -> int:
    from citybrain.catalog import load_catalog
    from citybrain.ingest.landing import unclaimed_files

    landing = settings.landing_dir()
    unclaimed = unclaimed_files(load_catalog(), landing)
    for relative in unclaimed:
        print(f"unknown feed: {relative} matches no delivery path in the catalog")
    print(f"{landing}: {len(unclaimed)} file(s) no feed claims")
    return 1 if unclaimed else 0


def add_commands(sub) -> None:
    p = sub.add_parser("catalog", help="source catalog tools")
    catalog_sub = p.add_subparsers(dest="catalog_command", required=True)
    v = catalog_sub.add_parser("validate", help="validate the source catalog")
    v.add_argument("path", nargs="?")
    v.set_defaults(func=cmd_catalog_validate)

    p = sub.add_parser("landing", help="landing zone tools")
    landing_sub = p.add_subparsers(dest="landing_command", required=True)
    v = landing_sub.add_parser("check", help="list delivered files that no catalog feed reads")
    v.set_defaults(func=cmd_landing_check)
