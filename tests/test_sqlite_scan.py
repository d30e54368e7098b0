"""A SQLite department table read by DuckDB's scanner gives what the SQLAlchemy read gives, or is read over
SQLAlchemy: value for value, the same quarantine, the same hash and the same cursor, over four nights.

The reference is the SQLAlchemy path (``sqlite_scan.plan`` patched to refuse every table) and, for the
decimals, Python's own ``'%.2f' % value`` through ``Decimal``: none of it is computed by the scanner's code.
"""

from __future__ import annotations

import logging
import math
import random
import sqlite3
import struct
from decimal import Decimal

import duckdb
import pytest
import sqlalchemy as sa

from citybrain import duckdb_extensions
from citybrain.ingest import sql_feed, sqlite_scan

REFUSED = "the SQLite scanner refused"


def _feed(catalog, table: str, names: list[str], key: str, cursor: str):
    base = catalog.feed("si_insured")
    columns = [base.columns[0].model_copy(update={"name": n}) for n in names]
    delivery = base.delivery.model_copy(update={"table": table, "cursor": cursor, "batch_size": 3})
    return base.model_copy(update={"columns": columns, "key": [key], "delivery": delivery})


def _create(path, ddl: str, rows: list[tuple]) -> None:
    with sqlite3.connect(path) as con:  # plain sqlite3: any storage class in any column, as a department may
        con.execute(ddl)
        con.executemany(f"INSERT INTO t VALUES ({', '.join('?' * len(rows[0]))})", rows)


def _fetch(engine, feed, cursor, scanner: bool, monkeypatch):
    """fetch_incremental with the scanner allowed, or with every table refused (the SQLAlchemy path)."""
    with monkeypatch.context() as patch:
        if not scanner:
            patch.setattr(sqlite_scan, "plan", lambda *args, **kwargs: None)
        batch, digest, new_cursor = sql_feed.fetch_incremental(engine, feed, cursor)
    rows = batch.rows.read_all() if hasattr(batch.rows, "read_all") else batch.rows
    return (
        rows.to_pylist(),
        [(q.row_number, q.raw_text, q.reason) for q in batch.quarantined],
        digest,
        new_cursor,
    )


def _same_both_ways(engine, feed, cursor, monkeypatch, caplog, read_by: str = "scanner"):
    """The fetch with the scanner allowed equals the SQLAlchemy path's; ``read_by`` says how the first was
    read: 'scanner', 'refused' (the scan started and gave up) or 'not planned' (never tried)."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=sql_feed.__name__):
        fast = _fetch(engine, feed, cursor, True, monkeypatch)
    refused = [r.getMessage() for r in caplog.records if REFUSED in r.getMessage()]
    slow = _fetch(engine, feed, cursor, False, monkeypatch)
    assert fast == slow
    planned = sqlite_scan.plan(engine, _table(engine), feed.column_names, feed.delivery.cursor, feed.key)
    assert (planned is not None, bool(refused)) == {
        "scanner": (True, False),
        "refused": (True, True),
        "not planned": (False, False),
    }[read_by], refused
    return fast


def _table(engine) -> sa.Table:
    return sa.Table("t", sa.MetaData(), autoload_with=engine)


DDL = (
    "CREATE TABLE t (rec_id VARCHAR(20) PRIMARY KEY, label TEXT, amount NUMERIC(12, 2), staff INTEGER,"
    " updated_at VARCHAR(19))"
)
NAMES = ["rec_id", "label", "amount", "staff", "updated_at"]


def test_text_numbers_and_decimals_arrive_as_over_sqlalchemy(tmp_path, catalog, monkeypatch, caplog):
    """Decimals stored as reals and as integers, ties and negative zero, Unicode and control characters,
    formulas, a blank key, NULLs: the scanner reads them (no refusal) into the same rows and quarantine."""
    path = tmp_path / "dept.sqlite"
    _create(path, DDL, [
        ("R1", "某公司", 5000, 12, "2026-11-20 08:00:00"),
        ("R2", "=HYPERLINK(\"x\")", -1234.5, None, "2026-11-20 08:00:00"),
        ("R3", None, None, 0, "2026-11-20 09:00:00"),
        ("R4", "tab\tand\nnewline", 0.125, -7, "2026-11-21 10:00:00"),
        ("R5", "🙂 é", 2.675, 2**62, "2026-11-21 10:00:00"),
        (" ", "blank key", 1, 1, "2026-11-21 11:00:00"),
        ("R6", "plain", 99999999999.99, 3, None),
        ("R7", "nul\x00inside", 1, 3, None),
        ("R8", "", -0.001, 3, "2026-11-21 11:00:00"),
    ])  # fmt: skip
    engine = sa.create_engine(f"sqlite:///{path}")
    feed = _feed(catalog, "t", NAMES, "rec_id", "updated_at")
    rows, quarantined, _, cursor = _same_both_ways(engine, feed, None, monkeypatch, caplog)
    amounts = {r["rec_id"]: r["amount"] for r in rows}
    # Python's own rendering, worked by hand: 0.125 is a binary tie (to even), 2.675 is 2.67499999...
    assert amounts == {
        "R1": "5000.00",
        "R3": None,
        "R4": "0.12",
        "R5": "2.67",
        "R6": "99999999999.99",
        "R8": "-0.00",
    }
    order = ["R6", "R1", "R3", "R4", "R5", "R8"]  # the NULL cursor first, as SQLite orders
    assert [r["rec_id"] for r in rows] == order
    assert {r["rec_id"]: r["staff"] for r in rows}["R5"] == str(2**62)
    assert sorted(q[2] for q in quarantined) == ["formula", "invalid_characters", "missing_key"]
    assert [q[2] for q in quarantined if "R2" in q[1]] == ["formula"]  # control characters are data (R4)
    assert cursor == ("2026-11-21 11:00:00", ['[" "]', '["R8"]'])


@pytest.mark.parametrize(
    ("ddl", "row", "read_by"),
    [
        (DDL, ("R1", b"\x00\xff", 1, 1, "2026-11-20"), "refused"),  # a blob in a text column
        (DDL, ("R1", "x", 1, 5.5, "2026-11-20"), "refused"),  # a real in an integer column
        (DDL, ("R1", "x", 1, "many", "2026-11-20"), "refused"),  # a text in an integer column
        (DDL, ("R1", "x", 1e16, 1, "2026-11-20"), "refused"),  # a decimal past the rendered range
        (DDL.replace("updated_at VARCHAR(19)", "updated_at VARCHAR(19) COLLATE NOCASE"),
         ("R1", "x", 1, 1, "2026-11-20"), "not planned"),
        (DDL.replace("amount NUMERIC(12, 2)", "amount NUMERIC(20, 8)"), ("R1", "x", 0.5, 1, "2026-11-20"),
         "not planned"),
        (DDL.replace("label TEXT", "label DATETIME"), ("R1", "2026-11-20 08:00:00", 1, 1, "2026-11-20"),
         "not planned"),
        (DDL.replace("label TEXT", "label REAL"), ("R1", 2.5, 1, 1, "2026-11-20"), "not planned"),
    ],
)  # fmt: skip
def test_what_the_scanner_cannot_render_is_read_over_sqlalchemy(
    tmp_path, catalog, monkeypatch, caplog, ddl, row, read_by
):
    path = tmp_path / "dept.sqlite"
    _create(path, ddl, [row, ("R0", None, 2, 2, "2026-11-19")])
    engine = sa.create_engine(f"sqlite:///{path}")
    feed = _feed(catalog, "t", NAMES, "rec_id", "updated_at")
    rows, _, _, _ = _same_both_ways(engine, feed, None, monkeypatch, caplog, read_by)
    assert [r["rec_id"] for r in rows] == ["R0", "R1"]


def test_without_the_extension_the_table_is_read_over_sqlalchemy(tmp_path, catalog, monkeypatch, caplog):
    path = tmp_path / "dept.sqlite"
    _create(path, DDL, [("R1", "x", 1, 1, "2026-11-20")])
    engine = sa.create_engine(f"sqlite:///{path}")
    feed = _feed(catalog, "t", NAMES, "rec_id", "updated_at")
    monkeypatch.setattr(duckdb_extensions, "extension_file", lambda name: None)
    with caplog.at_level(logging.INFO, logger=sql_feed.__name__):
        batch, _, _ = sql_feed.fetch_incremental(engine, feed, None)
    assert batch.rows.column("amount").to_pylist() == ["1.00"]
    assert any("extension is not installed" in r.getMessage() for r in caplog.records)


def test_four_nights_of_changes_give_the_same_fetches_both_ways(tmp_path, catalog, monkeypatch, caplog):
    """New rows, a row committed late at the cursor's own timestamp, a quiet night, corrections: each night
    fetched from the cursor the last night left, the scanner's fetch equal to SQLAlchemy's."""
    path = tmp_path / "dept.sqlite"
    _create(
        path, DDL, [(f"R{n:02}", f"名{n}", n * 100.5, n, f"2026-11-20 08:00:{n % 3:02}") for n in range(8)]
    )
    engine = sa.create_engine(f"sqlite:///{path}")
    feed = _feed(catalog, "t", NAMES, "rec_id", "updated_at")
    changes = [
        [],
        ["INSERT INTO t VALUES ('R50', 'late', 1, 1, '2026-11-20 08:00:02')",  # at the cursor, committed late
         "INSERT INTO t VALUES ('R51', 'new', 2, 2, '2026-11-21 09:00:00')"],
        [],  # a quiet night
        ["UPDATE t SET label = '改', amount = 7.125, updated_at = '2026-11-23 10:00:00' WHERE rec_id = 'R03'",
         "INSERT INTO t VALUES ('R52', 'new', 3, 3, '2026-11-23 10:00:00')"],
    ]  # fmt: skip
    cursor = None
    fetched = []
    for night in changes:
        with sqlite3.connect(path) as con:
            for statement in night:
                con.execute(statement)
        rows, _, _, cursor = _same_both_ways(engine, feed, cursor, monkeypatch, caplog)
        fetched.append(sorted(r["rec_id"] for r in rows))
    assert fetched == [[f"R{n:02}" for n in range(8)], ["R50", "R51"], [], ["R03", "R52"]]
    assert cursor == ("2026-11-23 10:00:00", ['["R03"]', '["R52"]'])


def test_duckdb_printf_renders_decimals_as_python_does():
    """``column_render``'s decimal: DuckDB's printf against Python's ``str(Decimal('%.{s}f' % v))`` on
    ties, signs, integers and random doubles of every magnitude below the rendered range."""
    generator = random.Random(20)
    values = [
        0.125,
        0.375,
        2.675,
        1.005,
        -0.001,
        -0.0,
        0.0,
        0.005,
        1.115,
        8.345,
        2.0**49 + 0.5,
        999999999999999.9,
    ]
    while len(values) < 270_000:
        pick = generator.random()
        if pick < 0.3:
            values.append(round(generator.uniform(-1e6, 1e6), 2))
        elif pick < 0.6:
            values.append(generator.randint(-(10**6), 10**6) / 8)
        else:
            value = struct.unpack("d", struct.pack("Q", generator.getrandbits(64)))[0]
            if math.isfinite(value) and abs(value) < sqlite_scan.MAX_DECIMAL_MAGNITUDE:
                values.append(value)
    con = duckdb.connect()
    con.execute("CREATE TABLE v AS SELECT unnest($values) AS value, generate_subscripts($values, 1) AS i",
                {"values": values})  # fmt: skip
    for scale in range(sqlite_scan.MAX_DECIMALS + 1):
        render = sqlite_scan.column_render("value", "decimal", scale)
        got = [r[0] for r in con.execute(f"SELECT {render} FROM v ORDER BY i").fetchall()]
        expected = [str(Decimal(f"%.{scale}f" % v)) for v in values]
        assert got == expected, scale


@pytest.mark.parametrize(
    ("warehouse_limit", "scan_limit"),
    [(None, "1GB"), ("8GB", "1GB"), ("4 GiB", "1GB"), ("1GB", "1GB"), ("512MiB", "512MiB"), ("64MB", "64MB")],
)
def test_the_scan_takes_the_warehouse_limit_up_to_its_own_cap(monkeypatch, warehouse_limit, scan_limit):
    """The scan's DuckDB is capped at 1 GB (a first fetch's sort spills rather than grows), or the
    warehouse's limit when that is less."""
    if warehouse_limit is None:
        monkeypatch.delenv("CITYBRAIN_DUCKDB_MEMORY_LIMIT", raising=False)
    else:
        monkeypatch.setenv("CITYBRAIN_DUCKDB_MEMORY_LIMIT", warehouse_limit)
    assert sqlite_scan._scan_config()["memory_limit"] == scan_limit
