"""Deliveries over a sequence of nights: new, repeated, older-than-current and corrected deliveries.

After every night the test says, from what it delivered (not from the pipeline's log), which delivery each
raw table must reflect, and that every delivered record is loaded, quarantined or in history.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from citybrain.ingest.landing import snapshot_order_key
from citybrain.ingest.pipeline import ingest_files

ROW = "{id},张三,男,1990-01-01,汉族,H1,330102,杭州市上城区解放路1号,13800000000,2020-01-01"


def person_id(n: int) -> str:
    """A valid 18-digit resident ID (GB 11643 check digit computed here, from the standard's weights)."""
    body = f"33010219900101{n:03d}"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]


def registry_file(catalog, people: range, extra_rows: list[str] = ()) -> bytes:
    header = ",".join(catalog.feed("household_registry").column_names)
    rows = [ROW.format(id=person_id(n)) for n in people] + list(extra_rows)
    return ("\r\n".join([header, *rows]) + "\r\n").encode("gb18030")


def egov_file(catalog, ids: list[str]) -> bytes:
    header = ",".join(catalog.feed("egov_applications").column_names)
    row = "{},S001,户口迁移,自然人,330102199001011234,2026-11-20 09:00:00,网上,0,2026-11-20 10:00:00,330102,N,办结"
    return ("\n".join([header, *(row.format(i) for i in ids)]) + "\n").encode()


class Night:
    """One night's run of one feed in a lake, and what the warehouse holds afterwards."""

    def __init__(self, lake: Path, catalog, feed_id: str):
        self.lake, self.catalog, self.feed_id = lake, catalog, feed_id
        self.number = 0

    def deliver(self, relative: str, data: bytes) -> None:
        path = self.lake / "landing" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def run(self, partition: str | None = None):
        self.number += 1
        feed = self.catalog.feed(self.feed_id)
        landing, warehouse = self.lake / "landing", self.lake / "warehouse.duckdb"
        return ingest_files(feed, landing, warehouse, partition, f"night-{self.number}")

    def query(self, sql: str, params=None) -> list[tuple]:
        con = duckdb.connect(str(self.lake / "warehouse.duckdb"), read_only=True)
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()

    def current(self) -> dict[str, int]:
        """Rows of the raw table per source file."""
        return dict(self.query(f"SELECT _source_file, count(*) FROM raw.{self.feed_id} GROUP BY 1"))

    def history(self) -> dict[str, int]:
        return dict(self.query(f"SELECT _source_file, count(*) FROM raw_history.{self.feed_id} GROUP BY 1"))

    def statuses(self) -> dict[str, str]:
        """The latest status of each delivered file (name + bytes) in the ingestion log."""
        rows = self.query(
            "SELECT source_file, status FROM raw.ingestion_log WHERE feed_id = ? ORDER BY finished_at",
            [self.feed_id],
        )
        return dict(rows)


def registry_nights(lake, catalog) -> Night:
    return Night(lake, catalog, "household_registry")


def test_newest_full_snapshot_wins_by_its_date_never_by_arrival(lake, catalog):
    night = registry_nights(lake, catalog)
    first, second = (
        "public_security/household_registry_20261201.csv",
        "public_security/household_registry_20261203.csv",
    )
    late = "public_security/household_registry_20261202.csv"
    corrected = "public_security/household_registry_20261203_corrected.csv"
    copy_of_first = "public_security/household_registry_20261201 (copy).csv"
    delivered: dict[str, int] = {}  # records delivered per file, counted here

    # Night 1: the first snapshot (5 people).
    night.deliver(first, registry_file(catalog, range(5)))
    delivered[first] = 5
    night.run()
    assert night.current() == {first: 5}

    # Night 2: a newer snapshot (3 people) replaces it; the older one moves to history.
    night.deliver(second, registry_file(catalog, range(3)))
    delivered[second] = 3
    night.run()
    assert night.current() == {second: 3}
    assert night.history() == {first: 5}

    # Night 3: nothing new; both files are still in the landing zone. Nothing is loaded again.
    result = night.run()
    assert result.entries == [] and sorted(result.unchanged) == [first, second]
    assert night.current() == {second: 3}

    # Night 4: a snapshot dated between them arrives late (4 people): logged, kept in history, not current.
    night.deliver(late, registry_file(catalog, range(4)))
    delivered[late] = 4
    result = night.run()
    assert [(e.source_file, e.status) for e in result.entries] == [(late, "superseded")]
    assert night.current() == {second: 3}
    assert night.history() == {first: 5, late: 4}
    assert night.query(
        "SELECT superseded_by_batch, message LIKE '%older than the current snapshot%' "
        "FROM raw.ingestion_log WHERE source_file = ?",
        [late],
    ) == [("night-2", True)]

    # Night 5: the department corrects the current day's snapshot (same date, another name, one bad row),
    # and sends the first snapshot again under another name.
    night.deliver(corrected, registry_file(catalog, range(6), extra_rows=["only,three,fields"]))
    night.deliver(copy_of_first, registry_file(catalog, range(5)))
    delivered[corrected] = 7
    delivered[copy_of_first] = 5
    result = night.run()
    assert {(e.source_file, e.status) for e in result.entries} == {
        (corrected, "loaded"),
        (copy_of_first, "duplicate"),
    }
    assert night.current() == {corrected: 6}
    assert night.history() == {first: 5, late: 4, second: 3}

    # Night 6: nothing new again; night 7: the next day's snapshot.
    assert night.run().entries == []
    assert night.current() == {corrected: 6}
    newest = "public_security/household_registry_20261204.csv"
    night.deliver(newest, registry_file(catalog, range(2)))
    delivered[newest] = 2
    night.run()
    assert night.current() == {newest: 2}
    assert night.statuses() == {
        first: "superseded",
        second: "superseded",
        late: "superseded",
        corrected: "superseded",
        copy_of_first: "duplicate",
        newest: "loaded",
    }

    # Nothing lost: every delivered record is current, in history or quarantined, except the duplicate's
    # (the same bytes as a load kept in history).
    kept = night.current() | night.history()
    quarantined = dict(night.query("SELECT source_file, count(*) FROM raw.quarantine GROUP BY 1"))
    for source, records in delivered.items():
        if source == copy_of_first:
            assert source not in kept
            continue
        assert kept.get(source, 0) + quarantined.get(source, 0) == records, source


def test_a_snapshot_whose_name_carries_no_date_is_refused_not_guessed(lake, catalog):
    night = registry_nights(lake, catalog)
    night.deliver("public_security/household_registry_20261201.csv", registry_file(catalog, range(2)))
    night.deliver("public_security/household_registry_latest.csv", registry_file(catalog, range(9)))
    result = night.run()
    assert any("no date in the file name" in p for p in result.problems)
    assert night.current() == {"public_security/household_registry_20261201.csv": 2}
    assert night.statuses()["public_security/household_registry_latest.csv"] == "failed"


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("x/registry_20261201.csv", "2026-12-01"),
        ("x/registry_2026-12-01.csv", "2026-12-01"),
        ("x/facilities_202611.xlsx", "2026-11"),
        ("x/2026/schools.csv", "2026"),
        ("x/registry_20261301_batch.csv", None),  # month 13: not a date
        ("x/registry_330102.csv", None),  # a county code, not a year
    ],
)
def test_delivery_date_read_from_the_name(catalog, name, key):
    feed = catalog.feed("household_registry")
    if key is None:
        with pytest.raises(Exception, match="no date"):
            snapshot_order_key(feed, name)
    else:
        assert snapshot_order_key(feed, name)[0] == key


def test_corrected_daily_partition_over_four_nights(lake, catalog):
    night = Night(lake, catalog, "egov_applications")
    day = "egov/applications_20261120.csv"
    v1, v2 = egov_file(catalog, ["A1", "A2"]), egov_file(catalog, ["A1", "A2", "A3"])

    night.deliver(day, v1)
    night.run("2026-11-20")
    assert night.query("SELECT count(*) FROM raw.egov_applications") == [(2,)]

    night.deliver(day, v2)  # corrected: new bytes under the same name
    night.run("2026-11-20")
    assert night.query("SELECT count(*) FROM raw.egov_applications") == [(3,)]

    night.deliver(day, v1)  # the old version sent again: seen before, never loaded over the correction
    result = night.run("2026-11-20")
    assert result.entries == [] and result.unchanged == [day]
    assert night.query("SELECT count(*) FROM raw.egov_applications") == [(3,)]

    result = night.run("2026-11-20")  # a quiet night
    assert result.entries == []
    assert night.query(
        "SELECT count(*), min(_file_sha256) = max(_file_sha256) FROM raw.egov_applications"
    ) == [(3, True)]
    assert night.query("SELECT count(*) FROM raw_history.egov_applications") == [(2,)]
