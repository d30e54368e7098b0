"""End to end over four nights on a city spanning three provinces, with the numbers expected per district
computed without the pipeline.

The city: Hangzhou's 上城/拱墅/余杭/临平/钱塘 (the successors of the 2021 merge of 下城区, the split of 江干区 and
余杭区 by township and the transfer of five streets from 萧山区), Shanghai's 黄浦区 (successor of 南市区 and
卢湾区) and Nanjing's 秦淮区 and 鼓楼区 (successors of 白下区 and 下关区). Its household registry and legal-entity
registry carry retired codes of all three provinces, split codes whose township decides the successor, and
retired codes the record gives no successor. Four nights run the real Dagster job: each night delivers
that day's files (the third is a quiet day of e-government applications, a header-only file), and the demo
hotline API answers as of 02:00 after the day, so tickets received on the first night are closed on later
ones (late updates fetched by ``updated_since``). On the second night the service centre also corrects the
first day's file (same name, an application added): that night runs the first day again, as the landing
zone's sensor would, and the first version's records move to history.

Expected values never come from the pipeline's crosswalk, validators or tables:
- residents and enterprises per district: the generator's truth (``ground_truth/residents.parquet``,
  ``enterprises.parquet``: each one's district before a stale code was injected), less the records its
  defect manifest (``defects.csv``) says cannot be identified (unreadable rows, invalid IDs) or carry a
  retired code with no recorded successor (which must stay without district);
- tickets per district and day, and tickets closed per district and day: the hotline centre's own store
  (every version of every ticket), as it stood when the API answered;
- applications per district and day: the delivered CSV files, read here with the csv module, less the rows
  the manifest lists as unreadable;
- records received: counted from the delivered bytes and from the API's answers, never from the log.
"""

from __future__ import annotations

import csv
import json
import shutil
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from demo_city.hotline_api import HotlineApiServer
from tests.demo_lake import demo_lake, run_nightly

pytestmark = pytest.mark.e2e

DAYS = ["2026-11-17", "2026-11-18", "2026-11-19", "2026-11-20"]
QUIET_DAY = DAYS[2]  # the e-government service centre is closed: it delivers a header-only file
CORRECTED_DAY, CORRECTED_ON = DAYS[0], DAYS[1]  # the first day's applications, sent again on the second night
ZHEJIANG = ["330102", "330105", "330110", "330113", "330114"]
SHANGHAI = ["310101"]
JIANGSU = ["320104", "320106"]
COUNTIES = ZHEJIANG + SHANGHAI + JIANGSU
RESIDENTS = 4000
DEFECT_RATE = 0.1  # enough stale records to reach every province and a split decided by township
FILE_FEEDS = {  # feed -> where its deliveries land (the demo's layout)
    "household_registry": "public_security/",
    "legal_entities": "market_regulation/",
    "egov_applications": "egov/",
}
DAILY_DELIVERIES = ("egov/", "operators/")  # delivered night by night; the registries' snapshots on night 1
# The job's assets these numbers need (the rest of the pool is covered by test_demo_end_to_end). The
# registries' snapshots arrive on the first night only, and the staging views of the daily feeds do not
# change: the later nights still ingest every feed (the snapshots again, finding nothing new) but rebuild
# only the daily models, one dbt build instead of two, which keeps the module fast.
RAW_KEYS = {f"raw/{feed}" for feed in [*FILE_FEEDS, "hotline_tickets"]}
DAILY_KEYS = RAW_KEYS | {"fct_hotline_ticket", "fct_service_application"}
FIRST_NIGHT_KEYS = DAILY_KEYS | {
    "stg_egov_applications",
    "stg_hotline_tickets",
    "stg_household_registry",
    "stg_legal_entities",
    "int_identity__residents",
    "int_identity__enterprises",
    "int_people__as_of_date",
    "int_people__residents",
    "dim_district",
    "dim_enterprise",
}
CLOSED = "已办结"


class CountingHotlineApi(HotlineApiServer):
    """The demo hotline API, counting the ticket records it answers with: what the hotline delivered,
    counted where it was sent."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.served = 0
        self._count_lock = threading.Lock()

    def answer(self, target: str) -> tuple[int, str, bytes]:
        status, kind, body = super().answer(target)
        if status == 200:
            with self._count_lock:
                self.served += len(json.loads(body)["data"])
        return status, kind, body


# -- expected values, from the generator's truth, the hotline store and the delivered files ---------------


def manifest(truth: Path, feed: str) -> list[dict]:
    with open(truth / "defects.csv", encoding="utf-8", newline="") as f:
        return [d for d in csv.DictReader(f) if d["feed"] == feed]


def clean_key(defect: dict) -> str:
    """The record's true key: the delivered one, or the clean one the manifest notes beside a changed one."""
    for prefix in ("clean_id=", "clean="):
        if defect["detail"].startswith(prefix):
            return defect["detail"].removeprefix(prefix)
    return defect["record_key"]


def detail_fields(defect: dict) -> dict[str, str]:
    """'current=330114 delivered=330104 township=下沙街道' -> {'current': ..., ...}."""
    return dict(part.partition("=")[::2] for part in defect["detail"].split(" "))


@dataclass
class Truth:
    """What the generator knows: true districts, and which delivered records carry which defect."""

    residents: Counter  # district (None: a retired code without successor) -> identifiable residents
    enterprises: Counter  # district -> identifiable enterprises
    active_enterprises: Counter
    stale_residents: dict[str, dict[str, str]]  # resident ID -> current / delivered / township
    stale_enterprises: dict[str, dict[str, str]]  # USCC -> current / delivered / township
    orphans: dict[str, str]  # resident ID -> delivered retired code without recorded successor
    unreadable: dict[str, set[int]] = field(default_factory=dict)  # file -> data rows with a raw defect


def generator_truth(truth: Path) -> Truth:
    """The expected numbers from the generator's own state: a record the manifest says is unreadable or has
    an invalid key identifies nobody, one with a retired code without successor belongs to no district, and
    every other one counts in its true district, whatever code it was delivered with."""
    registry = manifest(truth, "household_registry")
    lost = {clean_key(d) for d in registry if d["layer"] == "raw" or d["defect"] == "bad_check_digit"}
    orphans = {
        d["record_key"]: detail_fields(d)["delivered"]
        for d in registry
        if d["defect"] == "retired_code_without_successor"
    }
    people = pd.read_parquet(truth / "residents.parquet", columns=["id_number", "home_county"])
    people = people[~people["id_number"].isin(lost)]
    districts = [
        None if i in orphans else d for i, d in zip(people["id_number"], people["home_county"], strict=True)
    ]

    entities = manifest(truth, "legal_entities")
    lost = {clean_key(d) for d in entities if d["layer"] == "raw" or d["defect"] == "invalid_uscc_check_char"}
    columns = ["uscc", "district_code", "status", "in_entity_registry"]
    firms = pd.read_parquet(truth / "enterprises.parquet", columns=columns)
    firms = firms[firms["in_entity_registry"] & ~firms["uscc"].isin(lost)]

    unreadable: dict[str, set[int]] = {}
    for d in manifest(truth, "egov_applications"):
        if d["layer"] == "raw":
            unreadable.setdefault(d["file"], set()).add(int(d["row_number"]))
    return Truth(
        residents=Counter(districts),
        enterprises=Counter(firms["district_code"]),
        active_enterprises=Counter(firms.loc[firms["status"] == "存续", "district_code"]),
        stale_residents={
            d["record_key"]: detail_fields(d) for d in registry if d["defect"] == "retired_district_code"
        },
        stale_enterprises={
            d["record_key"]: detail_fields(d) for d in entities if d["defect"] == "retired_district_code"
        },
        orphans=orphans,
        unreadable=unreadable,
    )


def hotline_truth(store: Path, as_of: datetime, days: list[str]) -> tuple[Counter, Counter, Counter]:
    """From the hotline centre's store, each ticket received in ``days`` in its latest version no later than
    ``as_of``: tickets and closed tickets per (district, day received), and closed tickets per (district, day
    closed)."""
    cutoff = as_of.strftime("%Y-%m-%d %H:%M:%S")
    latest: dict[str, dict] = {}
    for path in sorted(store.glob("tickets_*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            v = json.loads(line) if line.strip() else None
            if v is None or v["updated_at"] > cutoff or v["received_at"][:10] not in days:
                continue
            known = latest.get(v["ticket_id"])
            if known is None or (v["updated_at"], v["version"]) > (known["updated_at"], known["version"]):
                latest[v["ticket_id"]] = v
    received, closed_by_received, closed_by_day = Counter(), Counter(), Counter()
    for v in latest.values():
        received[v["district_code"], v["received_at"][:10]] += 1
        if v["status"] == CLOSED:
            closed_by_received[v["district_code"], v["received_at"][:10]] += 1
            closed_by_day[v["district_code"], v["closed_at"][:10]] += 1
    return received, closed_by_received, closed_by_day


def delivered_applications(landing: Path, files: list[str], truth: Truth) -> Counter:
    """Applications per (district, day) in the delivered files, less the rows the manifest calls unreadable."""
    counts: Counter = Counter()
    for rel in files:
        with open(landing / rel, encoding="utf-8", newline="") as f:
            rows = csv.reader(f)
            header = next(rows)
            for number, row in enumerate(rows, start=1):
                if number in truth.unreadable.get(rel, ()):
                    continue
                assert len(row) == len(header), (rel, number)  # else the manifest missed a defect
                record = dict(zip(header, row, strict=True))
                counts[record["district_code"], record["submitted_at"][:10]] += 1
    return counts


def delivered_records(path: Path, data: bytes) -> int:
    """Records in a delivered file, counted from its bytes: lines, less the header of a CSV."""
    lines = [line for line in data.split(b"\n") if line.strip()]
    return len(lines) - (0 if path.suffix == ".jsonl" else 1)


# -- what the pipeline holds -----------------------------------------------------------------------------


def query(home: Path, sql: str, params=None) -> list[tuple]:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def observe(home: Path) -> dict:
    q = lambda sql, params=None: query(home, sql, params)  # noqa: E731
    shanghai_day = "strftime(timezone('Asia/Shanghai', {}), '%Y-%m-%d')"
    return {
        "residents": Counter(
            dict(q("SELECT district_code, count(*) FROM intermediate.int_people__residents GROUP BY 1"))
        ),
        "enterprises": Counter(dict(q("SELECT district_code, count(*) FROM pool.dim_enterprise GROUP BY 1"))),
        "active_enterprises": Counter(
            dict(q("SELECT district_code, count(*) FROM pool.dim_enterprise WHERE is_active GROUP BY 1"))
        ),
        "tickets": Counter(
            {
                (d, str(day)): n
                for d, day, n in q(
                    "SELECT district_code, received_date, count(*) FROM pool.fct_hotline_ticket GROUP BY ALL"
                )
            }
        ),
        "closed_by_received": Counter(
            {
                (d, str(day)): n
                for d, day, n in q(
                    "SELECT district_code, received_date, count(*) FROM pool.fct_hotline_ticket "
                    "WHERE is_closed GROUP BY ALL"
                )
            }
        ),
        "closed_by_day": Counter(
            {
                (d, day): n
                for d, day, n in q(
                    f"SELECT district_code, {shanghai_day.format('closed_at')}, count(*) "
                    "FROM pool.fct_hotline_ticket WHERE is_closed GROUP BY ALL"
                )
            }
        ),
        "applications": Counter(
            {
                (d, str(day)): n
                for d, day, n in q(
                    "SELECT district_code, submitted_date, count(*) FROM pool.fct_service_application "
                    "GROUP BY ALL"
                )
            }
        ),
        "registry_districts": {
            i: (delivered, current)
            for i, delivered, current in q(
                "SELECT id_number, district_code_delivered, district_code FROM staging.stg_household_registry"
            )
        },
        "entity_districts": {
            u: (delivered, current)
            for u, delivered, current in q(
                "SELECT uscc, district_code_delivered, district_code FROM staging.stg_legal_entities"
            )
        },
        "kept": {  # feed -> records per source file loaded, in history, quarantined, and the ingestion log
            feed: {
                "loaded": dict(q(f"SELECT _source_file, count(*) FROM raw.{feed} GROUP BY 1")),
                "history": dict(q(f"SELECT _source_file, count(*) FROM raw_history.{feed} GROUP BY 1")),
                "quarantined": dict(
                    q("SELECT source_file, count(*) FROM raw.quarantine WHERE feed_id = ? GROUP BY 1", [feed])
                ),
                "log": q(
                    "SELECT source_file, status, rows_received, rows_loaded, rows_quarantined, partition_key "
                    "FROM raw.ingestion_log WHERE feed_id = ?",
                    [feed],
                ),
            }
            for feed in [*FILE_FEEDS, "hotline_tickets"]
        },
    }


# -- the four nights -------------------------------------------------------------------------------------


@dataclass
class Night:
    day: str
    success: bool
    seen: dict  # what the warehouse holds after the night
    delivered: dict[str, int]  # file -> records, counted from its bytes (all files delivered so far)
    served: int  # hotline records the API answered with, all nights so far
    checks: dict[tuple[str, str], bool]  # (asset, check) -> passed, the night's asset checks
    tickets: tuple[Counter, Counter, Counter]  # the store's truth as of the night's fetch
    applications: Counter  # from the delivered files


def hold_back_daily_files(landing: Path, outbox: Path) -> None:
    """Move every day's deliveries out of the landing zone: each night delivers its own day's."""
    for top in DAILY_DELIVERIES:
        for path in sorted((landing / top).rglob("*")):
            rel = str(path.relative_to(landing))
            if path.is_file() and any(d.replace("-", "") in rel or d in rel for d in DAYS):
                (outbox / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.move(path, outbox / rel)


def deliver(outbox: Path, landing: Path, day: str) -> None:
    """The night's deliveries arrive: the day's files move into the landing zone."""
    for path in sorted(outbox.rglob("*")):
        rel = path.relative_to(outbox)
        if path.is_file() and (day.replace("-", "") in str(rel) or day in str(rel)):
            (landing / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.move(path, landing / rel)


def correct(landing: Path, day: str, unreadable: set[int]) -> None:
    """The day's application file sent again under its name with one application more (a copy of a
    readable one under a new number), as a service centre corrects a day it under-reported."""
    path = landing / "egov" / f"applications_{day.replace('-', '')}.csv"
    lines = path.read_bytes().rstrip(b"\n").split(b"\n")
    number = next(n for n in range(1, len(lines)) if n not in unreadable)
    added = f"ZW{day.replace('-', '')}900001".encode() + lines[number][lines[number].index(b",") :]
    path.write_bytes(b"\n".join([*lines, added]) + b"\n")


def make_quiet(outbox: Path, day: str) -> None:
    """The day's application file with its header only: the centre was closed."""
    path = outbox / "egov" / f"applications_{day.replace('-', '')}.csv"
    header = path.read_bytes().split(b"\n", 1)[0]
    path.write_bytes(header + b"\n")


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    home = tmp_path_factory.mktemp("three_provinces")
    started = time.perf_counter()
    with (
        demo_lake(home, COUNTIES, DAYS, residents=RESIDENTS, defect_rate=DEFECT_RATE) as summary,
        pytest.MonkeyPatch.context() as mp,
        CountingHotlineApi(summary.hotline_store) as api,
    ):
        mp.setenv("CITYBRAIN_HOTLINE_API_URL", api.base_url)
        # Only the selected models: their dbt tests run only where all parents are built too.
        mp.setenv("DBT_INDIRECT_SELECTION", "cautious")
        landing, outbox = summary.landing, home / "outbox"
        hold_back_daily_files(landing, outbox)
        make_quiet(outbox, QUIET_DAY)
        truth = generator_truth(summary.ground_truth)
        versions: dict[str, dict[bytes, int]] = {}  # file -> records of each version delivered (by bytes)
        nights = []
        for day in DAYS:
            deliver(outbox, landing, day)
            first = day
            if day == CORRECTED_ON:
                rel = f"egov/applications_{CORRECTED_DAY.replace('-', '')}.csv"
                correct(landing, CORRECTED_DAY, truth.unreadable.get(rel, set()))
                first = CORRECTED_DAY
            api.as_of = datetime.combine(date.fromisoformat(day) + timedelta(days=1), datetime.min.time())
            api.as_of += timedelta(hours=2)
            keys = FIRST_NIGHT_KEYS if not nights else DAILY_KEYS
            result = run_nightly(first, day, prefixes=("reference",), keys=keys)
            for top in FILE_FEEDS.values():
                for p in sorted((landing / top).rglob("*")):
                    if p.is_file():
                        data = p.read_bytes()
                        versions.setdefault(str(p.relative_to(landing)), {})[data] = delivered_records(
                            p, data
                        )
            delivered = {f: sum(records.values()) for f, records in versions.items()}
            egov = sorted(f for f in delivered if f.startswith(FILE_FEEDS["egov_applications"]))
            nights.append(
                Night(
                    day=day,
                    success=result.success,
                    seen=observe(home),
                    delivered=delivered,
                    served=api.served,
                    checks={
                        (e.asset_key.to_user_string(), e.check_name): e.passed
                        for e in result.get_asset_check_evaluations()
                    },
                    tickets=hotline_truth(summary.hotline_store, api.as_of, DAYS[: len(nights) + 1]),
                    applications=delivered_applications(landing, egov, truth),
                )
            )
        yield {"home": home, "truth": truth, "nights": nights, "seconds": time.perf_counter() - started}


# -- the tests -------------------------------------------------------------------------------------------


def test_every_night_succeeds(city):
    assert [(n.day, n.success) for n in city["nights"]] == [(d, True) for d in DAYS]
    print(f"four nights in {city['seconds']:.0f} s")


def test_every_blocking_check_passes_each_night_the_quiet_day_too(city):
    for n in city["nights"]:
        blocking = {key: passed for key, passed in n.checks.items() if key[1] == "gx_blocking"}
        assert ("raw/egov_applications", "gx_blocking") in blocking, n.day
        assert ("fct_service_application", "gx_blocking") in blocking, n.day
        assert all(blocking.values()), (n.day, [key for key, passed in blocking.items() if not passed])


def test_the_city_exercises_retired_codes_of_three_provinces_and_splits(city):
    """The test means something: stale codes of every province, and some whose township decides."""
    truth = city["truth"]
    stale = list(truth.stale_residents.values())
    assert {s["current"][:2] for s in stale} == {"33", "31", "32"}
    assert {s["delivered"][:2] for s in stale} == {"33", "31", "32"}
    assert any(s["township"] for s in stale)  # a split or transfer: the township names the successor
    assert {s["delivered"] for s in stale} - set(COUNTIES)  # codes retired, not only current ones
    assert truth.stale_enterprises and truth.orphans


@pytest.mark.parametrize("night", range(len(DAYS)))
def test_stale_records_go_to_the_district_they_truly_belong_to(city, night):
    truth, seen = city["truth"], city["nights"][night].seen
    for stale, delivered, what in (
        (truth.stale_residents, seen["registry_districts"], "resident"),
        (truth.stale_enterprises, seen["entity_districts"], "enterprise"),
    ):
        wrong = {
            key: (s, delivered.get(key))
            for key, s in stale.items()
            if delivered.get(key) != (s["delivered"], s["current"])
        }
        assert not wrong, f"{len(wrong)} of {len(stale)} stale {what} records mapped wrong: {wrong}"
    unmapped = {i: (truth.orphans[i], seen["registry_districts"].get(i)) for i in truth.orphans}
    assert all(got == (code, None) for code, got in unmapped.values()), unmapped


@pytest.mark.parametrize("night", range(len(DAYS)))
def test_residents_and_enterprises_per_district(city, night):
    truth, seen = city["truth"], city["nights"][night].seen
    assert seen["residents"] == truth.residents
    assert seen["enterprises"] == truth.enterprises
    assert seen["active_enterprises"] == truth.active_enterprises


@pytest.mark.parametrize("night", range(len(DAYS)))
def test_tickets_per_district_and_day_with_late_closures(city, night):
    n = city["nights"][night]
    received, closed_by_received, closed_by_day = n.tickets
    assert n.seen["tickets"] == received
    assert n.seen["closed_by_received"] == closed_by_received
    assert n.seen["closed_by_day"] == closed_by_day


def test_tickets_of_the_first_day_close_on_later_nights(city):
    """The test means something: tickets received on the first day were fetched again on later nights (late
    updates) and more of them are closed at the end than after the first night."""
    first, last = city["nights"][0], city["nights"][-1]
    fetches = [entry for entry in last.seen["kept"]["hotline_tickets"]["log"] if entry[5] == DAYS[0]]
    assert len(fetches) > 1
    day_one = lambda counts: sum(v for (_, day), v in counts.items() if day == DAYS[0])  # noqa: E731
    assert day_one(first.seen["closed_by_received"]) < day_one(last.seen["closed_by_received"])
    assert day_one(first.seen["tickets"]) == day_one(last.seen["tickets"])


@pytest.mark.parametrize("night", range(len(DAYS)))
def test_applications_per_district_and_day_with_a_quiet_day(city, night):
    n = city["nights"][night]
    assert n.seen["applications"] == n.applications
    delivered_days = {day for _, day in n.applications}
    assert delivered_days == {d for d in DAYS[: night + 1] if d != QUIET_DAY}
    if night >= DAYS.index(QUIET_DAY):  # the quiet day was delivered, logged, and has no applications
        quiet = f"egov/applications_{QUIET_DAY.replace('-', '')}.csv"
        assert n.delivered[quiet] == 0
        log = {(source, status) for source, status, *_ in n.seen["kept"]["egov_applications"]["log"]}
        assert (quiet, "loaded") in log


@pytest.mark.parametrize("night", range(len(DAYS)))
def test_every_delivered_record_is_loaded_quarantined_or_in_history(city, night):
    n = city["nights"][night]
    for feed, top in FILE_FEEDS.items():
        kept = n.seen["kept"][feed]
        files = {f: records for f, records in n.delivered.items() if f.startswith(top)}
        assert files, feed
        for source, records in files.items():
            loaded = kept["loaded"].get(source, 0)
            history = kept["history"].get(source, 0)
            quarantined = kept["quarantined"].get(source, 0)
            assert loaded + history + quarantined == records, (feed, source)
            # and the ingestion log says which, over every version of the file
            logged = [entry[2:5] for entry in kept["log"] if entry[0] == source]
            totals = tuple(sum(column) for column in zip(*logged, strict=True))
            assert totals == (records, loaded + history, quarantined), (feed, source, logged)
    corrected = n.seen["kept"]["egov_applications"]["history"].get(
        f"egov/applications_{CORRECTED_DAY.replace('-', '')}.csv", 0
    )
    assert (corrected > 0) == (night >= DAYS.index(CORRECTED_ON))  # the first version, superseded
    hotline = n.seen["kept"]["hotline_tickets"]
    loaded = sum(hotline["loaded"].values()) + sum(hotline["history"].values())
    assert loaded + sum(hotline["quarantined"].values()) == n.served
    assert sum(entry[2] for entry in hotline["log"]) == n.served
