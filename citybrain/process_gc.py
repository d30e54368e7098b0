"""Python's cyclic garbage collector in our long-running commands: fewer scans of objects that never die.

``citybrain run`` imports Dagster, dagster-dbt, the parsed dbt manifest and Great Expectations; each of
its dbt steps starts a dbt process that imports dbt and loads the manifest. Those are hundreds of
thousands of objects that live until the process ends, and the collector, at Python's default
thresholds (700, 10, 10), scans them again and again, the more often the more the process allocates
(ingestion's rows, dbt's and Dagster's events, the Python functions' vectors). Measured on two cores:
3.5 s of collections in the run's process of a 20,000-resident night, 1.8 s in a 300,000-resident
night's first dbt process. At exit the interpreter scans every object once more: ``citybrain run`` went
on for 2.5 to 4 s after its last line (``py-spy dump`` showed only ``gc_collect_main``).

* ``collect_less_often``, first thing in the process: the youngest generation is collected after 10,000
  allocations instead of 700 (Python 3.13 itself went to 2,000), and each older one after 20 of the
  one below instead of 10.
* ``freeze_long_lived``: every object tracked so far moves to a permanent generation that collections
  skip (``gc.freeze``). The dbt wrapper calls it once dbt's modules are imported, both executables
  again when the work is done.

With both, the run's process spent 1.0 s in collections and exited 0.2 to 0.5 s after its last line;
the dbt process spent 1.0 s. Reference counting still frees everything as before; only reference cycles wait
a little longer, and cycles made before a freeze and dropped after it are kept until the process exits.
That is why only the executables' entry points call these (``orchestration.cli.entry_point``,
``citybrain-dbt``), never code that tests or other programs run in their own process.
"""

from __future__ import annotations

import gc

YOUNGEST_GENERATION_THRESHOLD = 10_000  # allocations between collections of generation 0 (Python: 700)
OLDER_GENERATION_THRESHOLDS = (20, 20)  # collections of the generation below before one of 1, of 2 (10, 10)


def collect_less_often() -> None:
    """Raise the collector's thresholds (see the module docstring); first thing in a process."""
    gc.set_threshold(YOUNGEST_GENERATION_THRESHOLD, *OLDER_GENERATION_THRESHOLDS)


def freeze_long_lived() -> None:
    """Take every object tracked so far out of later collections, the one at shutdown included."""
    gc.freeze()
