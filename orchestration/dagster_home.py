"""The Dagster instance directory the ``citybrain`` commands share (``citybrain run``, ``status``, ``ui``).

Its own module so the CLI and the status report both use it without importing each other.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from citybrain import settings


def dagster_home() -> Path:
    """``$DAGSTER_HOME`` (default ``$CITYBRAIN_HOME/dagster_home``), created with the packaged instance
    configuration if new, and exported so ``DagsterInstance.get()`` finds it."""
    home = Path(os.environ.get("DAGSTER_HOME") or settings.home() / "dagster_home")
    home.mkdir(parents=True, exist_ok=True)
    instance_config = home / "dagster.yaml"
    if not instance_config.exists():
        shutil.copyfile(Path(__file__).with_name("instance") / "dagster.yaml", instance_config)
    os.environ["DAGSTER_HOME"] = str(home)
    return home
