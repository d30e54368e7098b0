"""A large delivery's rows wait in a Parquet spill file (citybrain/ingest/batch.py, ``SpilledRows``) whose row
groups are exactly DuckDB's size, so that DuckDB's insert leaves whole row groups in the table (partial ones
were merged by the next checkpoint: 0.8 s in the next feed's step). The sizes expected here are worked out
from DuckDB's row group size (122,880 rows, DuckDB's DEFAULT_ROW_GROUP_SIZE), not from the code."""

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from citybrain.ingest.batch import SpilledRows

DUCKDB_ROW_GROUP = 122_880


def _rows(start: int, n: int) -> pa.Table:
    numbers = list(range(start, start + n))
    return pa.table({"value": [f"v{i}" for i in numbers], "_row_number": pa.array(numbers, pa.int64())})


def test_rows_written_in_uneven_pieces_reach_the_file_and_the_table_in_whole_row_groups(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("CITYBRAIN_DUCKDB_TEMP_DIR", str(tmp_path / "spill"))
    pieces = [100_000, 100_000, 60_000, 40_000]  # 300,000 rows: 2 whole row groups and 54,240 rows
    spill = SpilledRows(_rows(0, 1).schema)
    start = 0
    for n in pieces:
        spill.write(_rows(start, n))
        start += n
    spill.close()
    assert spill.num_rows == 300_000

    metadata = pq.ParquetFile(spill.path).metadata
    sizes = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    assert sizes == [DUCKDB_ROW_GROUP, DUCKDB_ROW_GROUP, 300_000 - 2 * DUCKDB_ROW_GROUP]

    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("CREATE TABLE t (value VARCHAR, _row_number BIGINT)")
    con.execute(f"INSERT INTO t SELECT * FROM {spill.sql_source()}")
    con.execute("CHECKPOINT")
    groups = con.execute(
        "SELECT row_group_id, max(count) FROM pragma_storage_info('t') WHERE column_name = 'value' "
        "GROUP BY ALL ORDER BY 1"
    ).fetchall()
    assert [n for _, n in groups] == sizes
    numbers = [r[0] for r in con.execute("SELECT _row_number FROM t").fetchall()]
    assert numbers == list(range(300_000))  # every row, in the order written
