"""``citybrain-dbt``: dbt, with a Spark session prepared first when the target is ``spark``.

dbt-spark's ``method: session`` takes the process's Spark session (``SparkSession.builder.getOrCreate()``).
This wrapper creates it beforehand with the City Brain functions registered and the lake's Parquet
sources as views, then hands over to dbt's own command line in the same process. For any other target
it is plain dbt, run in the run's dbt zygote when there is one (``dbt_zygote.py``: dbt imported once per
run, not once per step). On every target it sets Python's garbage collector for a process that keeps what it
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


def import_dbt() -> None:
    """Import what a dbt run on DuckDB imports: dbt's command line, the adapter, our plugin (the zygote's
    preparation, citybrain/scale/dbt_zygote.py). Not what the plugin's Python functions import on their
    first call (pandas, 0.4 s per dbt step) nor jieba's dictionary (``cb_scrub_text``, 1 s of the daily
    step): the zygote lives through ingestion, where the 10M later night then peaked, at 4.01 GB with pandas
    here (bench/RESULTS.md, stop 37). Since stop 38 that night peaks at 3.53 GB in the models' dbt step,
    without them; with them again it has not been measured."""
    import dbt.adapters.duckdb  # noqa: F401
    from dbt.cli.main import cli  # noqa: F401

    import citybrain.transform.dbt_plugin  # noqa: F401


def run_dbt(argv: list[str]) -> int:
    """dbt's command line with ``argv`` in this process (after the Spark session on the Spark targets)."""
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


def main(argv: list[str] | None = None) -> int:
    collect_less_often()  # dbt imports and keeps hundreds of thousands of objects (process_gc.py)
    argv = list(sys.argv[1:] if argv is None else argv)
    if not _target(argv).startswith("spark"):  # the run's zygote has dbt imported already (dbt_zygote.py)
        from citybrain.scale.dbt_zygote import run_in_zygote

        code = run_in_zygote(argv)
        if code is not None:
            return code
    return run_dbt(argv)


if __name__ == "__main__":
    sys.exit(main())
