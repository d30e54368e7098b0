"""The ``citybrain`` command: generate the demo city, run the main job, open the UI, check the catalog.

One module per command group, each with ``add_commands(sub)`` hanging its commands on the main parser;
a new group is one import and one entry in ``COMMAND_GROUPS``. Runs are executed in-process against the
Dagster instance in ``$DAGSTER_HOME`` (default ``$CITYBRAIN_HOME/dagster_home``), so every run started
here shows up in the Dagster UI afterwards.
"""

from __future__ import annotations

import argparse
import sys

from citybrain.process_gc import collect_less_often, freeze_long_lived
from citybrain.sharing import cli as sharing
from citybrain.sharing import query_cli as access
from orchestration.cli import catalog, demo, governance, run, status, trace, ui

# In the order `citybrain --help` lists them.
COMMAND_GROUPS = (demo, run, status, ui, catalog, governance, trace, access, sharing)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="citybrain", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for group in COMMAND_GROUPS:
        group.add_commands(sub)
    args = parser.parse_args(argv)
    return args.func(args)


def entry_point() -> int:
    """The ``citybrain`` executable: ``main`` in a process of its own, with the garbage collector set for a
    process that keeps what it imports (citybrain/process_gc.py). Not in ``main``, which tests and other
    programs call in their own process."""
    collect_less_often()  # before the commands import hundreds of thousands of objects
    code = main()
    freeze_long_lived()  # the interpreter's shutdown then skips a scan of every object (seconds after a run)
    return code


if __name__ == "__main__":
    sys.exit(entry_point())
