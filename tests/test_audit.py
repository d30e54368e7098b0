"""The audit log: one hash chain over every action, tamper-evident, appendable from many processes,
readable with SQL by auditors only."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

import citybrain.access as access
from citybrain.access import audit
from citybrain.access.audit_query import query_audit_log
from orchestration.cli import main as citybrain
from tests.access_lake import access_lake


@pytest.fixture
def log_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CITYBRAIN_AUDIT_DIR", str(tmp_path / "audit"))
    for n in range(5):
        audit.append("query", outcome="ok", user=f"u{n}", via="test", sql=f"SELECT {n}", rows=n)
    return tmp_path / "audit"


def _rewrite(path, change):
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(change(lines)) + "\n", encoding="utf-8")


def test_an_intact_chain_verifies(log_dir, capsys):
    result = audit.verify()
    assert result.ok and result.records == 5
    records = audit.read_records()
    assert [r["seq"] for r in records] == [1, 2, 3, 4, 5]
    assert all(b["prev"] == a["hash"] for a, b in zip(records, records[1:], strict=False))
    assert citybrain(["audit", "verify"]) == 0
    assert "5 records, chain intact" in capsys.readouterr().out


def _edit_rows(lines):
    record = json.loads(lines[2])
    record["rows"] = 0  # someone hides how much they read
    lines[2] = json.dumps(record, ensure_ascii=False)
    return lines


def _edit_and_rehash(lines):
    """Editing a record and recomputing its own hash still breaks the next record's link."""
    record = json.loads(lines[1])
    record["user"] = "someone_else"
    body = {k: v for k, v in record.items() if k != "hash"}
    record["hash"] = audit._digest(record["prev"], body)
    lines[1] = json.dumps(record, ensure_ascii=False)
    return lines


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (_edit_rows, "record edited"),
        (_edit_and_rehash, "chain broken"),
        (lambda lines: lines[:2] + lines[3:], "record deleted or inserted"),
        (lambda lines: lines[:4], "cut off the end"),
        (lambda lines: [lines[1], lines[0], *lines[2:]], "record deleted or inserted"),
    ],
    ids=["edit", "edit-and-rehash", "delete-middle", "truncate-tail", "reorder"],
)
def test_tampering_is_detected(log_dir, change, expected, capsys):
    _rewrite(log_dir / audit.AUDIT_FILE, change)
    result = audit.verify()
    assert not result.ok
    assert any(expected in problem for problem in result.problems), result.problems
    assert citybrain(["audit", "verify"]) == 1
    assert "TAMPERED" in capsys.readouterr().err


def test_concurrent_writers_keep_one_chain(log_dir):
    writer = textwrap.dedent(
        """
        import sys
        from citybrain.access import audit
        for n in range(25):
            audit.append("query", outcome="ok", user=sys.argv[1], via="test", sql="SELECT 1")
        """
    )
    processes = [subprocess.Popen([sys.executable, "-c", writer, f"w{i}"]) for i in range(4)]
    assert all(p.wait(timeout=60) == 0 for p in processes)
    result = audit.verify()
    assert result.ok, result.problems
    assert result.records == 5 + 4 * 25


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    with access_lake(tmp_path_factory.mktemp("audited")) as home:
        with access.connect(user="demo_analyst") as session:
            session.query("SELECT * FROM pool.dim_area")
            with pytest.raises(access.QueryRejected):
                session.query("SELECT * FROM read_csv('/etc/passwd')")
        yield home


def test_auditors_query_the_log_and_others_cannot(lake, capsys):
    result = query_audit_log(
        "SELECT action, outcome, user, tables, run_id FROM audit ORDER BY seq", user="demo_auditor"
    ).to_pylist()
    assert result[0] == {
        "action": "publication", "outcome": "ok", "user": result[0]["user"],
        "tables": ["pool.dim_area", "pool.fct_visit"], "run_id": "run-access",
    }  # fmt: skip
    assert [(r["action"], r["outcome"], r["user"]) for r in result[1:3]] == [
        ("query", "ok", "demo_analyst"),
        ("query", "rejected", "demo_analyst"),
    ]
    with pytest.raises(access.AccessDenied, match="demo_analyst.*may not read the audit log"):
        query_audit_log("SELECT * FROM audit", user="demo_analyst")
    assert (audit.read_records()[-1]["action"], audit.read_records()[-1]["outcome"]) == (
        "audit_query",
        "denied",
    )
    for sql in ("DELETE FROM audit", "UPDATE audit SET user = 'x'", "SELECT * FROM read_json('audit.jsonl')"):
        with pytest.raises(access.QueryRejected):
            query_audit_log(sql, user="demo_auditor")
    assert citybrain(["audit", "query", "SELECT count(*) AS n FROM audit", "--user", "demo_auditor"]) == 0
    assert "(1 rows)" in capsys.readouterr().out
    assert citybrain(["audit", "query", "SELECT 1", "--user", "demo_researcher"]) == 2
    assert audit.verify().ok, "querying the log leaves the chain intact"
