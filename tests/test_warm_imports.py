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
