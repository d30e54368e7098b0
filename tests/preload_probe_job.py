"""A two-step job with the project's default executor (orchestration/executors.py), for
tests/test_preloaded_executor.py: each step reports, as output metadata, its own pid, its parent's pid and
whether Great Expectations was already imported when the step began (no step here imports it), and the
garbage collector's youngest threshold and frozen objects as the step found them, and the socket of the run's
dbt zygote its dbt processes would use (citybrain/scale/dbt_zygote.py). The second step requires the dbt
resource, as the project's dbt steps do, so a run of the first step alone has no dbt steps."""

import gc
import os
import sys

from dagster import Definitions, MetadataValue, Output, ResourceDefinition, job, op

from assets.dbt.models import DBT_RESOURCE_KEY
from orchestration.executors import preloaded_default_executor


def _probe():
    return Output(
        None,
        metadata={
            "pid": MetadataValue.int(os.getpid()),
            "parent_pid": MetadataValue.int(os.getppid()),
            "great_expectations_loaded": MetadataValue.bool("great_expectations" in sys.modules),
            "gc_youngest_threshold": MetadataValue.int(gc.get_threshold()[0]),
            "gc_frozen_objects": MetadataValue.int(gc.get_freeze_count()),
            "dbt_zygote": MetadataValue.text(os.environ.get("CITYBRAIN_DBT_ZYGOTE", "")),
        },
    )


@op
def first_probe():
    return _probe()


@op(required_resource_keys={DBT_RESOURCE_KEY})
def second_probe(after):
    return _probe()


@job(
    executor_def=preloaded_default_executor(),
    resource_defs={DBT_RESOURCE_KEY: ResourceDefinition.none_resource()},
)
def preload_probe():
    second_probe(first_probe())


defs = Definitions(jobs=[preload_probe])
