"""Python's cyclic garbage collector in our long-running commands: fewer scans of objects that never die.

``citybrain run`` imports Dagster, dagster-dbt, the parsed dbt manifest and Great Expectations; each of
its dbt steps starts a dbt process that imports dbt and loads the manifest. Those are hundreds of
thousands of objects that live until the process ends, and the collector, at Python's default
thresholds (700, 10, 10), scans them again and again: measured on a 20,000-resident night on two cores,
3.3 s of collections in the run's process and 2.2 s in the models step's dbt process. At exit the
interpreter scans every object once more: ``citybrain run`` went on for 2.5 to 4 s after its last line
(``py-spy dump`` showed only ``gc_collect_main``), the dbt process for about 1 s.

* ``settle_after_start_up``: when a process has made its long-lived objects, move them to the permanent
  generation collections skip (``gc.freeze``), and collect the youngest generation after 10,000
  allocations instead of 700 (Python 3.13 itself raised it to 2,000). The run's process then spent
  1.3 s in collections, the dbt process 0.9 s.
* ``freeze_before_exit``: the same freeze when the work is done, so shutdown skips the last scan (the
  processes then exit in 0.2 s).

Reference counting still frees everything as before; only reference cycles wait longer, and cycles made
before a freeze and dropped after it are kept until the process exits (start-up objects are not dropped).
Used by the ``citybrain`` command (orchestration/cli) and the ``citybrain-dbt`` wrapper that runs dbt.
"""

from __future__ import annotations

import gc

YOUNGEST_GENERATION_THRESHOLD = 10_000  # allocations between collections of generation 0 (Python: 700)
OLDER_GENERATION_THRESHOLDS = (
    20,
    20,
)  # collections of the generation below before one of 1 and of 2 (10, 10)


def settle_after_start_up() -> None:
    """Freeze the objects made so far and collect the youngest generation less often (module docstring)."""
    gc.freeze()
    gc.set_threshold(YOUNGEST_GENERATION_THRESHOLD, *OLDER_GENERATION_THRESHOLDS)


def freeze_before_exit() -> None:
    """Freeze every object, so the interpreter's shutdown does not scan them all once more."""
    gc.freeze()
