"""The background import of a run in process: it imports what is missing, and a module that cannot be
imported is left to the step that needs it (no exception in the run); the packages the run itself imports
too are imported in the calling thread before the background thread starts."""

import sys
import threading

from orchestration.warm_imports import warm_imports


def test_imports_missing_modules_in_a_thread(tmp_path, monkeypatch):
    (tmp_path / "cb_warm_probe.py").write_text(
        "import threading\nIMPORTED_BY = threading.current_thread().name\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "cb_warm_probe", raising=False)
    thread = warm_imports(["json", "cb_warm_probe"])
    assert thread is not None
    thread.join(timeout=60)
    assert sys.modules["cb_warm_probe"].IMPORTED_BY == "citybrain-warm-imports"
    assert warm_imports(["json", "cb_warm_probe"]) is None  # all imported: no thread


def test_a_failing_import_is_left_to_the_step(tmp_path, monkeypatch):
    (tmp_path / "cb_warm_broken.py").write_text("raise RuntimeError('broken on purpose')\n")
    (tmp_path / "cb_warm_after.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("cb_warm_broken", "cb_warm_after"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    thread = warm_imports(["cb_warm_broken", "cb_warm_after"])
    thread.join(timeout=60)
    assert "cb_warm_broken" not in sys.modules  # the step's own import raises, with its traceback
    assert sys.modules["cb_warm_after"].VALUE == 1  # the modules after it are still imported


def test_shared_packages_are_imported_here_before_the_thread_starts(tmp_path, monkeypatch):
    for name in ("cb_warm_shared", "cb_warm_later"):
        (tmp_path / f"{name}.py").write_text(
            "import threading\nIMPORTED_BY = threading.current_thread().name\n"
        )
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    thread = warm_imports(["cb_warm_later"], first_here=("cb_warm_shared",))
    thread.join(timeout=60)
    assert threading.current_thread().name == sys.modules["cb_warm_shared"].IMPORTED_BY
    assert sys.modules["cb_warm_later"].IMPORTED_BY == "citybrain-warm-imports"


def test_calls_run_in_the_thread_after_the_imports_and_a_failing_one_is_left(tmp_path, monkeypatch):
    (tmp_path / "cb_warm_calls.py").write_text(
        "import threading\nCALLED = []\n"
        "def broken():\n    raise RuntimeError('broken on purpose')\n"
        "def record():\n    CALLED.append(threading.current_thread().name)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "cb_warm_calls", raising=False)
    thread = warm_imports(["json"], calls=("cb_warm_calls:broken", "cb_warm_calls:record"))
    assert thread is not None  # json is imported: the calls alone start the thread
    thread.join(timeout=60)
    assert sys.modules["cb_warm_calls"].CALLED == ["citybrain-warm-imports"]


def test_run_values_read_ahead_need_no_county_polygon_later(lake, monkeypatch):
    """``citybrain run`` reads the suites' run values ahead (orchestration/cli/run.py, WARM_CALLS): after
    it, the check step's run values convert no county polygon (1.3 s of the first check step before)."""
    import duckdb

    from citybrain.quality import validate
    from citybrain.quality.suites import load_suites
    from citybrain.reference import boundaries
    from orchestration.cli.run import WARM_CALLS

    thread = warm_imports([], calls=WARM_CALLS)
    thread.join(timeout=120)

    def no_polygon(code):
        raise AssertionError(f"county {code} converted again")

    monkeypatch.setattr(boundaries, "county_boundary", no_polygon)
    suite = next(s for s in load_suites() if s.dataset == "raw.operator_c_cells")
    with duckdb.connect() as con:
        values = validate.run_values(con, suite, None)
    assert values.county_codes and set(values.county_extents) == set(values.county_codes)
