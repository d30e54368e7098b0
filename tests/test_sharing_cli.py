"""``citybrain sharing``: the operator creates accounts and tokens, people act with their token, and
``citybrain status`` shows overdue applications."""

from __future__ import annotations

import io
from datetime import date, timedelta

from citybrain.access import audit
from citybrain.resource_catalog.export import CURRENT, JSON_FILE, export_dir
from citybrain.sharing.applications import overdue_report
from orchestration.cli import main as citybrain
from tests.sharing_lake import VISIT_CODE, write_catalog


def run(capsys, monkeypatch, *argv, stdin: str = ""):
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = citybrain(["sharing", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_accounts_tokens_and_the_workflow_from_the_shell(lake, capsys, monkeypatch):
    monkeypatch.delenv("CITYBRAIN_SHARING_DB_URL", raising=False)
    monkeypatch.delenv("CITYBRAIN_SHARING_TOKEN", raising=False)
    write_catalog(export_dir() / CURRENT / JSON_FILE)
    assert overdue_report() is None  # no sharing database yet, and status does not create one
    assert run(capsys, monkeypatch, "init")[0] == 0
    assert (lake / "sharing" / "sharing.db").exists()
    for name, department, role in (("li", "CJJ", "consumer"), ("chen", "SJJ", "data_office"),
                                   ("wang", "WJW", "provider_approver")):  # fmt: skip
        code, _, err = run(capsys, monkeypatch, "account", "create", "--name", name, "--department", department,
                           "--role", role, "--password-stdin", stdin="a long passphrase\n")  # fmt: skip
        assert code == 0, err
    token = {}
    for name in ("li", "chen", "wang"):
        code, out, _ = run(capsys, monkeypatch, "token", "issue", "--account", name, "--label", "cli")
        token[name] = out.strip()
    until = (date.today() + timedelta(days=60)).isoformat()
    code, out, err = run(capsys, monkeypatch, "apply", "--resource", VISIT_CODE, "--purpose", "visits per district",
                         "--columns", "area_code,visit_no", "--rows", "area_code=330106", "--until", until)  # fmt: skip
    assert code == 2 and "--token" in err  # no identity without a token
    code, out, err = run(capsys, monkeypatch, "apply", "--token", token["li"], "--resource", VISIT_CODE,
                         "--purpose", "visits per district", "--columns", "area_code,visit_no", "--rows",
                         "area_code=330106", "--until", until)  # fmt: skip
    assert code == 0 and out.startswith("#1 submitted"), err
    code, out, err = run(capsys, monkeypatch, "decide", "1", "approve", "--token", token["li"])
    assert code == 2 and "may not decide" in err
    assert run(capsys, monkeypatch, "review", "1", "--token", token["chen"])[0] == 0
    code, out, _ = run(capsys, monkeypatch, "decide", "1", "approve", "--token", token["wang"])
    assert code == 0 and "approved" in out and "grant=1" in out
    records = [r for r in audit.read_records() if r["application_id"] == 1]
    assert [r["user"] for r in records] == ["li", "chen", "wang", "wang"]
    assert audit.verify().ok
    code, _, _ = run(capsys, monkeypatch, "token", "revoke", "1")
    code, _, err = run(capsys, monkeypatch, "apply", "--token", token["li"], "--resource", VISIT_CODE,
                       "--purpose", "again please", "--columns", "visit_no", "--until", until)  # fmt: skip
    assert code == 2 and "TokenInvalid" in err
    assert overdue_report(today=date.today() + timedelta(days=30)) == []  # decided: nothing pending
