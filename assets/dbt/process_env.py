"""What the dbt process reads from its environment: profiles.yml the warehouse path, the run_window macro
the run's days. Read at execution only, so the parse state stays valid from night to night."""

import os
from pathlib import Path

WAREHOUSE_ENV = "CITYBRAIN_WAREHOUSE"
WINDOW_ENV = ("CITYBRAIN_MIN_DATE", "CITYBRAIN_MAX_DATE")  # the run's days, read by the run_window macro


def set_dbt_environment(warehouse_path: Path, window: tuple[str, str] | None) -> None:
    """Export the warehouse path and the run's first and last day (unset without a window) for dbt."""
    os.environ[WAREHOUSE_ENV] = str(warehouse_path)
    for name, value in zip(WINDOW_ENV, window or (None, None), strict=True):
        if value:
            os.environ[name] = value
        else:
            os.environ.pop(name, None)
