"""Loading the code location stays cheap: libraries only a run needs are imported when it runs.

Every `dagster` command, the UI and each run process load the definitions first (target: under 5 s,
bench/definitions_load.py). pandas, pyarrow (and numpy under both) and SQLAlchemy used to cost about
2 s of that through module-top imports, DuckDB (assets and the warehouse/publication modules they
import) a little more; they are imported inside the functions that use them now. Great Expectations,
PySpark and Dask are only ever imported by a running step.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from citybrain.settings import REPO_ROOT

RUN_TIME_ONLY = (
    "pandas",
    "pyarrow",
    "numpy",
    "sqlalchemy",
    "duckdb",
    "great_expectations",
    "pyspark",
    "dask",
)


def test_definitions_load_does_not_import_run_time_libraries():
    """Nor the demo generator (demo_city), which the product never imports: not the definitions, not the
    command line (the `citybrain demo` commands import it inside the commands)."""
    probe = (
        "import json, sys\n"
        "import orchestration.definitions\n"
        f"run_time = [m for m in {RUN_TIME_ONLY!r} if m in sys.modules]\n"
        "import contextlib, io, orchestration.cli\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    orchestration.cli.main(['--help'])  # every command group's parser built\n"
        "print(json.dumps([run_time, [m for m in sys.modules if m.split('.')[0] == 'demo_city']]))\n"
    )
    # A fresh interpreter: the test session itself has imported all of them already.
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    imported, demo = json.loads(done.stdout.strip().splitlines()[-1])
    assert imported == [], (
        f"definitions load imported {imported}: import them inside the function that needs them"
    )
    assert demo == [], f"the product imported the demo generator: {demo}"


def _checkout_copy(destination: Path) -> Path:
    """The checkout's tracked files (without dbt's target/) in ``destination``: a `dagster dev` there parses into
    its own target/, never into the one the other test worker's runs read the manifest from."""
    files = (
        subprocess.run(["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True)
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, files):
        source = REPO_ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


def test_the_code_location_loads_under_dagster_dev_without_the_venv_on_path(tmp_path):
    """`.venv/bin/dagster dev -w workspace.yaml` with a PATH that has no dbt: dagster-dbt's dev preparer runs
    `dbt parse` from PATH, and the location must still load (assets/dbt_project.py puts the installed dbt
    first). It runs in a copy of the checkout (first on PYTHONPATH), whose target/ the parse writes, as
    `dagster dev` would write the real one."""
    checkout = _checkout_copy(tmp_path / "checkout")
    env = {
        "PYTHONPATH": str(checkout),
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "DAGSTER_IS_DEV_CLI": "1",
        "CITYBRAIN_HOME": str(tmp_path / "lake"),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    (tmp_path / "dagster_home").mkdir()
    probe = (
        "import os, shutil; from orchestration.definitions import defs; import citybrain.settings as s; "
        f"assert str(s.REPO_ROOT) == {str(checkout.resolve())!r}, s.REPO_ROOT; "
        "assert defs.resolve_job_def('city_nightly'); print(shutil.which('dbt'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=checkout, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (checkout / "dbt_project" / "target" / "manifest.json").is_file()  # the copy's, parsed by dbt
    assert result.stdout.strip() == str(Path(sys.executable).parent / "dbt")  # the installed one
