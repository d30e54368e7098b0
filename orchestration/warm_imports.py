"""Importing what later steps need while the first steps run, for a run executed in this process.

``citybrain run`` executes the whole job in one process (Dagster's in-process executor). Its first check
step then imports Great Expectations: about 4 s of a night on two cores (6 s in a py-spy profile of a
1M-resident night), spent while nothing else runs. The ingestion steps before it spend much of their time
outside Python (DuckDB reading and writing, SQLite, the network), with the GIL free and a core idle, so
the import is started in a background thread when the run starts and overlaps them.

Subprocess runs need none of this: their steps fork from a server that has imported the same modules
(``executors.PRELOADED_MODULES``, the one list of them).

A failed import is left for the step that needs the module: it imports it again and fails there, with
its traceback in that step. Python's import locks make the step wait for a module the thread is still
importing, except inside a package whose modules import each other: two threads importing such a package
at once can meet in a cycle, and Python then hands one of them the module half-imported
(``AttributeError: partially initialized module 'sqlalchemy.orm.exc'``, seen once when the run's Dagster
instance imported SQLAlchemy's ORM while the thread imported it for Great Expectations). So the packages
that both the thread and the run's own first work import (``IMPORTED_HERE_FIRST``) are imported in the
calling thread before the thread starts; the first steps need them anyway.
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading

log = logging.getLogger(__name__)

# Imported by Great Expectations (the thread) and by the run itself before its check steps: SQLAlchemy's ORM
# (the Dagster instance's storage, the SQL feeds), numpy and pyarrow (ingestion), pandas (the reference step).
IMPORTED_HERE_FIRST = ("sqlalchemy.orm", "numpy", "pyarrow", "pandas")


def warm_imports(
    modules: list[str], first_here: tuple[str, ...] = IMPORTED_HERE_FIRST, calls: tuple[str, ...] = ()
) -> threading.Thread | None:
    """Import ``first_here`` in this thread, then start importing the ``modules`` not imported yet in a
    daemon thread, and calling ``calls`` ("module:function", each reading ahead what a later step reads;
    a failure is left to that step, as for an import); the thread, or None when there is nothing to do."""
    missing = [m for m in modules if m not in sys.modules]
    if not missing and not calls:
        return None
    for module in first_here:
        importlib.import_module(module)

    def run() -> None:
        for module in missing:
            try:
                importlib.import_module(module)
            except Exception as exc:  # noqa: BLE001 - the step that needs it imports it again and reports
                log.debug("warm import of %s failed (the step that needs it will say why): %s", module, exc)
        for call in calls:
            module, _, function = call.partition(":")
            try:
                getattr(importlib.import_module(module), function)()
            except Exception as exc:  # noqa: BLE001 - the step that needs it does it again and reports
                log.debug("warm call %s failed (the step that needs it will say why): %s", call, exc)

    thread = threading.Thread(target=run, name="citybrain-warm-imports", daemon=True)
    thread.start()
    return thread
