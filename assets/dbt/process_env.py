"""What the dbt process reads from its environment: profiles.yml the warehouse path, the run_window macro
the run's days, dbt itself how much it writes to its log file. Read at execution only, so the parse state
stays valid from night to night."""

import os
from pathlib import Path

WAREHOUSE_ENV = "CITYBRAIN_WAREHOUSE"
WINDOW_ENV = ("CITYBRAIN_MIN_DATE", "CITYBRAIN_MAX_DATE")  # the run's days, read by the run_window macro
# dbt's own setting for its log file (dbt.log in the step's target directory). dbt writes it at debug by
# default: every SQL statement and connection event, 3,700 lines and 4.7 MB for the models' step of a
# 1M-resident night, each line an event serialised in one of dbt's two threads. At info the file keeps
# each node's start, result and timing, warnings and errors (and the failing SQL of an error); the
# statements of every node stay in target/<step>/run/. Set it to debug in the environment to have them all.
FILE_LOG_LEVEL_ENV = "DBT_LOG_LEVEL_FILE"
FILE_LOG_LEVEL = "info"


def set_dbt_environment(warehouse_path: Path, window: tuple[str, str] | None) -> None:
    """Export the warehouse path and the run's first and last day (unset without a window) for dbt, and
    dbt's file log level unless the environment already chose one."""
    os.environ[WAREHOUSE_ENV] = str(warehouse_path)
    for name, value in zip(WINDOW_ENV, window or (None, None), strict=True):
        if value:
            os.environ[name] = value
        else:
            os.environ.pop(name, None)
    os.environ.setdefault(FILE_LOG_LEVEL_ENV, FILE_LOG_LEVEL)
