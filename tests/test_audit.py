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
from citybrain.sharing import session as sharing
from citybrain.sharing.store import open_store
from orchestration.cli import main as citybrain
from tests.access_lake import access_lake
from tests.sharing_lake import token_for


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
    """A published lake whose log holds a publication, then a token holder's read and refusal."""
    with access_lake(tmp_path_factory.mktemp("audited")):
        store = open_store()
        analyst, _ = token_for(
            store, "li_analyst", grants=[{"table": "pool.dim_area", "tier": "open", "columns": ["area_code"]}]
        )
        auditor, _ = token_for(store, "zhao_auditor", role="auditor")
        store.engine.dispose()
        with sharing.connect(analyst) as session:
            session.query("SELECT * FROM pool.dim_area")
            with pytest.raises(access.QueryRejected):
                session.query("SELECT * FROM read_csv('/etc/passwd')")
        yield {"analyst": analyst, "auditor": auditor}


def test_auditors_query_the_log_with_their_token_and_others_cannot(lake, capsys):
    result = sharing.read_audit_log(
        "SELECT action, outcome, user, tables, run_id FROM audit "
        "WHERE action NOT IN ('account', 'token', 'grant') ORDER BY seq",
        lake["auditor"],
    ).to_pylist()
    assert result[0] == {
        "action": "publication", "outcome": "ok", "user": result[0]["user"],
        "tables": ["pool.dim_area", "pool.fct_visit"], "run_id": "run-access",
    }  # fmt: skip
    assert [(r["action"], r["outcome"], r["user"]) for r in result[1:3]] == [
        ("query", "ok", "li_analyst"),
        ("query", "rejected", "li_analyst"),
    ]
    with pytest.raises(access.AccessDenied, match="li_analyst .consumer. may not read the audit log"):
        sharing.read_audit_log("SELECT * FROM audit", lake["analyst"])
    assert (audit.read_records()[-1]["action"], audit.read_records()[-1]["outcome"]) == (
        "audit_query",
        "denied",
    )
    for sql in ("DELETE FROM audit", "UPDATE audit SET user = 'x'", "SELECT * FROM read_json('audit.jsonl')"):
        with pytest.raises(access.QueryRejected):
            sharing.read_audit_log(sql, lake["auditor"])
    assert citybrain(["audit", "query", "SELECT count(*) AS n FROM audit", "--token", lake["auditor"]]) == 0
    assert "(1 rows)" in capsys.readouterr().out
    assert audit.read_records()[-1]["user"] == "zhao_auditor"
    assert citybrain(["audit", "query", "SELECT 1", "--token", lake["analyst"]]) == 2
    assert "may not read the audit log" in capsys.readouterr().err
    assert citybrain(["audit", "query", "SELECT 1"]) == 2  # no identity at all
    assert citybrain(["audit", "query", "SELECT count(*) FROM audit", "--local-operator"]) == 0
    assert audit.read_records()[-1]["user"].startswith("operator:")
    assert audit.verify().ok, "querying the log leaves the chain intact"
