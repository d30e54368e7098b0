"""``citybrain ui``: the Dagster UI (``dagster dev``) on this lake's instance. Starts no demo service:
the hotline feed reads the configured API (``citybrain demo-ui`` serves the demo one beside the UI)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from citybrain import settings
from orchestration.dagster_home import dagster_home


def open_ui(host: str, port: int) -> int:
    """``dagster dev`` on the code location until it exits or Ctrl-C stops it (and its process group)."""
    dagster_home()
    command = [
        str(Path(sys.executable).with_name("dagster")),
        "dev",
        "-w",
        str(settings.REPO_ROOT / "workspace.yaml"),
        "-h",
        host,
        "-p",
        str(port),
    ]
    process = subprocess.Popen(command, cwd=settings.REPO_ROOT, start_new_session=True)
    try:
        return process.wait()
    except KeyboardInterrupt:
        os.killpg(process.pid, 15)
        return process.wait()


def cmd_ui(args: argparse.Namespace) -> int:
    return open_ui(args.host, args.port)


def add_commands(sub) -> None:
    p = sub.add_parser("ui", help="start the Dagster UI")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3000)
    p.set_defaults(func=cmd_ui)
