"""The benchmark's ingestion floor reads what the night loaded, with the reader the catalog's delivery calls
for (bench/ingestion_floor.py; issue 20.1). The bench itself is not run here: these are its choices."""

from __future__ import annotations

import gzip
import hashlib
import sys

import duckdb
import pytest

from citybrain.catalog import load_catalog
from citybrain.settings import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "bench"))
import ingestion_floor as floor  # noqa: E402  (bench/ is tooling, not a package)


def _entry(feed: str, source: str, data: bytes | None = None, partition: str = "", rows: int = 0) -> dict:
    return {
        "feed_id": feed,
        "partition_key": partition,
        "source_file": source,
        "sha256": hashlib.sha256(data).hexdigest() if data is not None else "d" * 64,
        "bytes": len(data) if data is not None else None,
        "rows_received": rows,
    }


def test_delivery_pattern_is_filled_with_the_partition_day():
    assert floor.delivery_glob("operators/ctcc/{date:%Y-%m-%d}/od.csv.gz", "2026-11-20") == (
        "operators/ctcc/2026-11-20/od.csv.gz"
    )
    assert floor.delivery_glob("egov/applications_{date:%Y%m%d}.csv", "") == "egov/applications_*.csv"
    assert floor.delivery_glob("public_security/household_registry_*.csv", "") == (
        "public_security/household_registry_*.csv"
    )


def test_a_file_is_found_by_its_bytes_not_its_name(tmp_path):
    night = b"id,name\n1,a\n"
    (tmp_path / "reg_20261120.csv").write_bytes(b"id,name\n2,b\n")  # the logged name, other bytes now
    (tmp_path / "reg_old.csv").write_bytes(night)
    entry = _entry("household_registry", "reg_20261120.csv", night)
    assert floor.find_delivered(tmp_path, entry, "reg_*.csv") == tmp_path / "reg_old.csv"
    gone = _entry("household_registry", "reg_20261120.csv", b"id,name\n3,c\n")
    assert floor.find_delivered(tmp_path, gone, "reg_*.csv") is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:////lake/landing/hrss/social_insurance.sqlite", ("sqlite", "/lake/landing/hrss/social_insurance.sqlite")),
        ("postgresql+psycopg://hr:s3cret@db.local:5432/hrss", ("postgres", "postgresql://hr:s3cret@db.local:5432/hrss")),
        ("mysql+pymysql://hr:s3cret@db.local:3306/hrss", ("mysql", "host=db.local port=3306 user=hr password=s3cret database=hrss")),
    ],
)  # fmt: skip
def test_a_database_url_becomes_the_scanner_and_its_attach_string(url, expected):
    assert floor.attach_target(url) == expected


def test_each_delivery_kind_gets_its_reader_and_cursor(tmp_path):
    catalog = load_catalog()
    landing = tmp_path / "landing"
    (landing / "public_security").mkdir(parents=True)
    registry = "身份证号,姓名\n1,张三\n".encode("gb18030")
    (landing / "public_security" / "household_registry_20261120.csv").write_bytes(registry)
    entries = [
        _entry("household_registry", "public_security/household_registry_20261120.csv", registry, rows=1),
        _entry("si_insured", "db:sqlite:///x#si_insured", rows=7),
        _entry(
            "hotline_tickets",
            "http:http://127.0.0.1:1/api/v1/tickets?date=2026-11-20",
            partition="2026-11-20",
        ),
    ]
    cursors = {
        "si_insured|": ("2026-11-19 18:00:00", ['["SI1"]']),
        "hotline_tickets|2026-11-20": ("2026-11-20 08:00:00", []),
    }
    env = {"CITYBRAIN_SOCIAL_INSURANCE_URL": "postgresql://hr@db.local/hrss"}
    registry_load, insured, tickets = floor.plan_loads(catalog, entries, landing, cursors, env)

    assert registry_load["kind"] == "csv" and registry_load["matched"] == "sha256"
    assert registry_load["path"] == str(landing / "public_security" / "household_registry_20261120.csv")
    assert floor.needs_transcoding(registry_load)  # GB18030: Python's codec or the encodings extension
    assert (insured["backend"], insured["target"]) == ("postgres", "postgresql://hr@db.local/hrss")
    assert insured["since"] == ("2026-11-19 18:00:00", ['["SI1"]'])
    assert tickets["params"] == {
        "date": "2026-11-20",
        "page_size": 500,
        "updated_since": "2026-11-20 08:00:00",
    }


def test_the_readers_load_every_file_kind_as_text(tmp_path):
    (tmp_path / "ragged.csv.gz").write_bytes(gzip.compress(b"a,b\n1,x\n2\n3,z\n"))
    (tmp_path / "feed.jsonl").write_text('{"a": 1, "b": "x"}\n{"a": 2, "b": {"n": 1}}\n', encoding="utf-8")
    con = duckdb.connect()
    con.execute("COPY (SELECT 7 AS a, DATE '2026-11-20' AS b) TO '" + str(tmp_path / "f.parquet") + "'")

    def rows(kind: str, name: str) -> list[tuple]:
        load = {"kind": kind, "columns": ["a", "b"], "delimiter": ","}
        return con.execute(floor.file_reader_sql(load, str(tmp_path / name)) + " ORDER BY 1").fetchall()

    assert rows("csv", "ragged.csv.gz") == [("1", "x"), ("2", None), ("3", "z")]  # the short row padded
    assert rows("jsonl", "feed.jsonl") == [("1", "x"), ("2", '{"n":1}')]
    assert rows("parquet", "f.parquet") == [("7", "2026-11-20")]
    assert not floor.needs_transcoding({"kind": "csv", "encoding": "utf-8-sig"})
    assert not floor.needs_transcoding({"kind": "parquet", "encoding": "utf-8"})


def test_a_database_fetch_starts_at_the_cursor_without_the_keys_already_read_there():
    """sql_feed.py's rule: ``updated_at >= cursor``, minus the keys read last time at exactly the cursor."""
    con = duckdb.connect()
    con.execute("CREATE TABLE si (insured_id VARCHAR, updated_at VARCHAR)")
    con.execute(
        "INSERT INTO si VALUES ('SI0', '2026-11-19 17:00:00'), ('SI1', '2026-11-19 18:00:00'), "
        "('SI2', '2026-11-19 18:00:00'), ('SI3', '2026-11-20 09:00:00')"
    )
    load = {
        "cursor_column": "updated_at",
        "key": ["insured_id"],
        "since": ("2026-11-19 18:00:00", ['["SI1"]']),
    }
    fetched = con.execute("SELECT insured_id FROM si" + floor.cursor_filter(load) + " ORDER BY 1").fetchall()
    assert fetched == [("SI2",), ("SI3",)]
    first = con.execute("SELECT count(*) FROM si" + floor.cursor_filter({**load, "since": None})).fetchone()
    assert first == (4,)
