"""``citybrain-dbt``: dbt, with a Spark session prepared first when the target is ``spark``.

dbt-spark's ``method: session`` takes the process's Spark session (``SparkSession.builder.getOrCreate()``).
This wrapper creates it beforehand with the City Brain functions registered and the lake's Parquet
sources as views, then hands over to dbt's own command line in the same process. For any other target
it is plain dbt. On every target it sets Python's garbage collector for a process that keeps what it
imports (citybrain/process_gc.py). Dagster's dbt resource runs this executable on every target
(``orchestration/definitions.py``), so one code path serves both engines.
"""

from __future__ import annotations

import sys

from citybrain.process_gc import collect_less_often, freeze_long_lived


def _target(argv: list[str]) -> str:
    from citybrain import settings

    for i, arg in enumerate(argv):
        if arg == "--target" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--target="):
            return arg.split("=", 1)[1]
    return settings.dbt_target()


def main(argv: list[str] | None = None) -> int:
    collect_less_often()  # dbt imports and keeps hundreds of thousands of objects (process_gc.py)
    argv = list(sys.argv[1:] if argv is None else argv)
    # compile needs the session too: is_incremental() and the relation cache ask the metastore
    needs_session = argv[:1] not in (["parse"], ["deps"], ["clean"], ["--version"], [])
    target = _target(argv)
    if target == "spark" and needs_session:
        from citybrain.scale.spark_session import build_session

        build_session()
    elif target == "spark_thrift" and needs_session:
        from citybrain.scale.thrift_client import register_lake_views

        register_lake_views()
    from dbt.cli.main import cli

    freeze_long_lived()  # dbt's modules (and the Spark session's) live as long as the process
    try:
        cli.main(args=argv, prog_name="dbt", standalone_mode=True)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    finally:
        freeze_long_lived()  # the interpreter's shutdown then skips a scan of every object
    return 0


if __name__ == "__main__":
    sys.exit(main())
