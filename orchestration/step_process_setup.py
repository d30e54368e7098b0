"""The collector settings of ``citybrain/process_gc.py`` for the step processes of a launched run.

A run launched from the UI, a schedule or the daemon runs each step in a process forked from a forkserver
that has imported the code location and Great Expectations (``executors.preloaded_default_executor``).
The forkserver imports this module last, so its import is its job: a forked process inherits the
collector's thresholds and its frozen generation, and every step then starts with the hundreds of
thousands of objects it was forked with out of the collector's scans, and with the youngest generation
collected less often, as ``citybrain run`` and the dbt wrapper do. Freezing right before the forks is
also what Python's documentation advises for a parent that forks without exec: collections in the
children do not write to the shared objects, so their pages stay shared.

Never imported by code that runs in someone else's process (tests, ``citybrain run``'s warm imports):
the settings are process-wide.
"""

from citybrain.process_gc import collect_less_often, freeze_long_lived

collect_less_often()
freeze_long_lived()
