"""The garbage-collector settings of our long-running commands (citybrain/process_gc.py): what they set, that
the ``citybrain`` executable and the dbt wrapper apply them, and that the wrapper still passes dbt's exit
codes through (dagster-dbt tells failed tests, 1, from a dbt that could not run, 2)."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

import pytest

from citybrain import process_gc

WRAPPER = str(Path(sys.executable).with_name("citybrain-dbt"))


@pytest.fixture
def restored_collector():
    """Put the collector back as it was: the settings are process-wide."""
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_the_young_are_collected_less_often_and_frozen_objects_not_at_all(restored_collector):
    process_gc.collect_less_often()
    assert gc.get_threshold() == (
        process_gc.YOUNGEST_GENERATION_THRESHOLD,
        *process_gc.OLDER_GENERATION_THRESHOLDS,
    )
    assert gc.get_threshold()[0] > 700  # Python's default, which it replaces
    gc.unfreeze()
    made_before = [[] for _ in range(10)]  # noqa: F841 - tracked objects that exist now
    process_gc.freeze_long_lived()
    assert gc.get_freeze_count() > 0


def test_the_citybrain_executable_applies_the_settings_and_main_alone_does_not(
    restored_collector, monkeypatch
):
    """``main`` runs in the caller's process (tests, other programs): it leaves the collector alone. The
    executable's entry point sets it for its own process and freezes before it returns."""
    from orchestration.cli import entry_point, main

    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    assert main(["catalog", "validate"]) == 0
    assert (gc.get_freeze_count(), gc.get_threshold()) == (0, (700, 10, 10))
    monkeypatch.setattr(sys, "argv", ["citybrain", "catalog", "validate"])
    assert entry_point() == 0
    assert gc.get_freeze_count() > 0  # frozen before it returns: the shutdown skips them
    assert gc.get_threshold()[0] == process_gc.YOUNGEST_GENERATION_THRESHOLD


def test_the_dbt_wrapper_passes_dbts_exit_codes_through(tmp_path):
    """0 for a command that worked, 2 for dbt unable to run (no project here); the wrapper's own
    settings change neither."""
    version = subprocess.run([WRAPPER, "--version"], capture_output=True, text=True, cwd=tmp_path)
    assert version.returncode == 0, version.stderr
    assert "dbt" in version.stdout.lower() or "core" in version.stdout.lower()
    no_project = subprocess.run(
        [WRAPPER, "build", "--project-dir", str(tmp_path)], capture_output=True, text=True, cwd=tmp_path
    )
    assert no_project.returncode == 2, no_project.stdout + no_project.stderr


def test_the_dbt_wrapper_applies_the_settings():
    """In the wrapper's process, after dbt returns: frozen objects and the raised threshold."""
    probe = (
        "import gc, sys\n"
        "from citybrain.scale import dbt_cli\n"
        "code = dbt_cli.main(['--version'])\n"
        "print(code, gc.get_freeze_count() > 0, gc.get_threshold()[0])\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    code, frozen, youngest = out.strip().splitlines()[-1].split()
    assert (code, frozen, int(youngest)) == ("0", "True", process_gc.YOUNGEST_GENERATION_THRESHOLD)
