"""Every hostile case: (a) its expected error or quarantine rows, (b) received = loaded + quarantined
for every delivery in the ingestion log (and the raw and quarantine tables agree), (c) another feed's
delivery in the same run still loads, (d) a failure names the delivery and the problem."""

from __future__ import annotations

import duckdb
import pytest

from citybrain.ingest.pipeline import ingest_files
from tests.hostile.corpus import BATCH, CASES, Case, Ctx

BYSTANDER = "operators/market_share_202611.csv"
BYSTANDER_ROWS = (
    b"district_code,operator,subscriber_share,month\n330102,CMCC,0.6,2026-11\n330102,CUCC,0.4,2026-11\n"
)


def test_the_corpus_is_big_and_distinct():
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)
    assert all(bool(c.error) != bool(c.quarantine) or not c.quarantine for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_case(case: Case, lake, catalog, monkeypatch):
    ctx = Ctx(lake, catalog, monkeypatch)
    (lake / "landing" / BYSTANDER).parent.mkdir(parents=True, exist_ok=True)
    (lake / "landing" / BYSTANDER).write_bytes(BYSTANDER_ROWS)

    result, name = case.run(ctx)
    bystander = ingest_files(
        catalog.feed("operator_market_share"), lake / "landing", lake / "warehouse.duckdb", None, BATCH
    )

    # (a) + (d): the expected outcome, and a failure names the delivery and the problem
    if case.error:
        assert len(result.problems) == 1, result.problems
        problem = result.problems[0]
        assert name in problem, f"{problem!r} does not name {name!r}"
        for words in case.error:
            assert words in problem, f"{words!r} not in {problem!r}"
    else:
        assert not result.problems, result.problems
        assert result.quarantined_by_reason() == case.quarantine
    assert result.rows_loaded == case.loaded

    with duckdb.connect(str(lake / "warehouse.duckdb"), read_only=True) as con:
        log = con.execute(
            "SELECT log_id, feed_id, source_file, status, rows_received, rows_loaded, rows_quarantined, message "
            "FROM raw.ingestion_log"
        ).fetchall()
        mine = [r for r in log if r[1] == case.feed]
        if case.error:
            failed = [r for r in mine if r[3] == "failed"]
            assert len(failed) == 1 and name in failed[0][2] + " " + (failed[0][7] or ""), mine
            assert all(words in failed[0][7] for words in case.error[:1]), failed[0][7]
        # (b) nothing lost: every delivery accounts for every record, and the tables agree with the log
        for log_id, feed_id, source, _status, received, loaded, quarantined, _ in log:
            assert received == loaded + quarantined, (feed_id, source)
            (in_quarantine,) = con.execute(
                "SELECT count(*) FROM raw.quarantine WHERE log_id = ?", [log_id]
            ).fetchone()
            assert in_quarantine == quarantined, (feed_id, source)
        for entry in result.entries:
            if entry.status == "loaded":
                (rows,) = con.execute(
                    f'SELECT count(*) FROM raw."{case.feed}" WHERE _source_file = ?', [entry.source_file]
                ).fetchone()
                assert rows == entry.rows_loaded
        reasons = con.execute(
            "SELECT reason, count(*), min(length(detail)) FROM raw.quarantine WHERE feed_id = ? GROUP BY 1",
            [case.feed],
        ).fetchall()
        assert {r: n for r, n, _ in reasons} == case.quarantine
        assert all(shortest > 0 for _, _, shortest in reasons), "every quarantined row says why"

    # (c) the other feed of the same run is not affected
    assert not bystander.problems and bystander.rows_loaded == 2

    if case.check is not None:
        case.check(ctx, result)
