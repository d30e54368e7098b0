"""The Great Expectations / DuckDB workaround (citybrain/quality/gx_duckdb.py) and what it relies on.

If a GX upgrade breaks these tests, read the module docstring: either GX changed the internal we patch
(fix the module), or GX now works on DuckDB without it (delete the workaround).
"""

import subprocess
import sys
import textwrap

import duckdb
import pytest

from citybrain.quality.gx_duckdb import enable_persisted_duckdb_connection, warehouse_batches


@pytest.fixture
def warehouse(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(
            "CREATE SCHEMA raw; CREATE TABLE raw.people AS SELECT range::VARCHAR AS id, "
            "CASE WHEN range = 3 THEN NULL ELSE 'x' END AS name, "
            "CASE WHEN range = 5 THEN '11010519491231002X' ELSE '110105194912310021' END AS id_number "
            "FROM range(10)"
        )
    return path


def test_gx_internal_we_patch_still_exists():
    from great_expectations.execution_engine import sqlalchemy_execution_engine as engine_module

    assert isinstance(engine_module._PERSISTED_CONNECTION_DIALECTS, tuple)
    assert hasattr(engine_module.SqlAlchemyExecutionEngine, "get_connection")
    enable_persisted_duckdb_connection()
    enable_persisted_duckdb_connection()
    assert sum(d == "duckdb" for d in engine_module._PERSISTED_CONNECTION_DIALECTS) == 1


def test_without_the_workaround_gx_fails_on_duckdb(warehouse):
    """Documents the GX bug. When this starts to pass GX-side, the workaround can go."""
    script = textwrap.dedent(
        f"""
        import great_expectations as gx, great_expectations.expectations as gxe
        context = gx.get_context(mode="ephemeral")
        source = context.data_sources.add_sql("w", connection_string="duckdb:///{warehouse}")
        batch = source.add_table_asset("p", table_name="people", schema_name="raw").add_batch_definition_whole_table("b").get_batch()
        result = batch.validate(gxe.ExpectTableRowCountToBeBetween(min_value=1))
        print("RESULT", result.success, result.exception_info.get("exception_message") or list(result.exception_info.values())[:1])
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    line = next(line for line in out.stdout.splitlines() if line.startswith("RESULT"))
    assert line.startswith("RESULT False"), f"GX now validates DuckDB without the workaround: {line}"
    assert "list index out of range" in line


def test_validation_in_database_with_domain_functions(warehouse):
    import great_expectations.expectations as gxe

    with warehouse_batches(warehouse) as batches:
        batch = batches.batch("SELECT * FROM raw.people WHERE id <> '9'")
        rows = batch.validate(gxe.ExpectTableRowCountToBeBetween(min_value=9, max_value=9))
        nulls = batch.validate(gxe.ExpectColumnValuesToNotBeNull(column="name"))
        invalid = batch.validate(
            gxe.UnexpectedRowsExpectation(
                unexpected_rows_query="SELECT * FROM {batch} WHERE cb_ric_problem(id_number) IS NOT NULL"
            )
        )
    assert rows.success and rows.result["observed_value"] == 9
    assert not nulls.success and nulls.result["unexpected_count"] == 1
    # 110105194912310021 has a wrong check digit; the X variant is valid (python-stdnum decides).
    assert not invalid.success and invalid.result["observed_value"] == 8


def test_connection_is_released_after_validation(warehouse):
    import great_expectations.expectations as gxe

    with warehouse_batches(warehouse) as batches:
        assert (
            batches.batch("SELECT * FROM raw.people")
            .validate(gxe.ExpectTableRowCountToBeBetween(min_value=1))
            .success
        )
    # A writer in this process (and in any other) can open the file again.
    with duckdb.connect(str(warehouse)) as con:
        con.execute("INSERT INTO raw.people VALUES ('10', 'y', NULL)")


def test_one_scan_rows_rule_counts_and_keeps_examples_from_one_query(warehouse):
    """The unexpected-rows expectation of our suites (citybrain/quality/one_scan.py) runs its query once
    per batch, not once for the count and again for the rows, and its result matches GX's own."""
    import great_expectations.expectations as gxe
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from citybrain.quality.one_scan import OneScanUnexpectedRowsExpectation
    from citybrain.quality.validate import ROW_QUERY_TYPES

    query = "SELECT id, id_number FROM {batch} WHERE cb_ric_problem(id_number) IS NOT NULL"
    statements = []

    def seen(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(Engine, "before_cursor_execute", seen)
    try:
        with warehouse_batches(warehouse) as batches:
            batch = batches.batch("SELECT * FROM raw.people")
            statements.clear()
            ours = batch.validate(OneScanUnexpectedRowsExpectation(unexpected_rows_query=query))
            ours_runs = sum("cb_ric_problem" in s for s in statements)
            statements.clear()
            theirs = batch.validate(gxe.UnexpectedRowsExpectation(unexpected_rows_query=query))
            theirs_runs = sum("cb_ric_problem" in s for s in statements)
            passing = batch.validate(
                OneScanUnexpectedRowsExpectation(
                    unexpected_rows_query="SELECT * FROM {batch} WHERE id = 'none'"
                )
            )
    finally:
        event.remove(Engine, "before_cursor_execute", seen)
    assert (ours_runs, theirs_runs) == (1, 2)
    assert OneScanUnexpectedRowsExpectation.expectation_type in ROW_QUERY_TYPES  # its count is its outcome's
    assert not ours.success and ours.result["observed_value"] == theirs.result["observed_value"] == 9
    examples = ours.result["details"]["unexpected_rows"]
    assert len(examples) == 5  # EXAMPLES rows of the nine, each a row of the query
    assert all(set(row) == {"id", "id_number"} and row["id"] != "5" for row in examples)
    assert passing.success and passing.result["observed_value"] == 0
    assert passing.result["details"]["unexpected_rows"] == []
