"""One identity everywhere (issue 21): a self-made grants file and a claimed name give nothing; a token reads
only its granted columns and rows through the CLI and a real SQLAlchemy engine; tampered, expired and
revoked tokens are refused; the auditor's token reads the audit log and a consumer's does not.

Expected values come from the access lake itself: ``fct_visit`` has 20 rows, visit_no 0..19, with
``area_code`` 330106 on the even visit numbers, so a grant of the 330106 rows is the 10 even visits."""

from __future__ import annotations

import json
from datetime import timedelta

import pandas as pd
import pytest
import sqlalchemy

import citybrain.access as access
from citybrain.access import audit
from citybrain.sharing import grants, tokens
from citybrain.sharing import session as sharing
from citybrain.sharing.store import open_store, utcnow
from citybrain.sharing.tokens import TokenInvalid
from orchestration.cli import main as citybrain
from tests.access_lake import access_lake
from tests.sharing_lake import token_for

EVEN_VISITS = list(range(0, 20, 2))
VISIT_GRANT = {
    "table": "pool.fct_visit",
    "tier": "conditional",
    "columns": ["area_code", "visit_no"],
    "row_filter_column": "area_code",
    "row_filter_values": ["330106"],
}


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    with access_lake(tmp_path_factory.mktemp("identity")) as home:
        store = open_store()
        consumer, consumer_id = token_for(store, "li_analyst", grants=[VISIT_GRANT])
        auditor, _ = token_for(store, "zhao_auditor", role="auditor")
        yield {"home": home, "store": store, "consumer": consumer, "consumer_id": consumer_id,
               "auditor": auditor}  # fmt: skip
        store.engine.dispose()


def reads_ok_by(user: str) -> list[dict]:
    return [r for r in audit.read_records() if r["user"] == user and r["outcome"] == "ok"]


def test_a_self_written_grants_file_and_a_claimed_name_give_nothing(lake, tmp_path, monkeypatch, capsys):
    """The attempt of issue 21: mallory writes a grants file giving herself the conditional tier."""
    own = tmp_path / "grants.yaml"
    own.write_text(
        "roles:\n  everything: {tiers: [open, conditional], audit: true}\n"
        "users:\n  mallory: {roles: [everything]}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("CITYBRAIN_GRANTS", str(own))
    monkeypatch.setenv("CITYBRAIN_USER", "mallory")
    assert citybrain(["query", "SELECT * FROM pool.fct_visit"]) == 2
    captured = capsys.readouterr()
    assert "person_pseudonym" not in captured.out and "p0" not in captured.out
    assert "CITYBRAIN_USER is set" in captured.err and "--token" in captured.err
    # Not even beside a valid token: the retired settings are refused loudly, not silently ignored.
    assert citybrain(["query", "SELECT * FROM pool.fct_visit", "--token", lake["consumer"]]) == 2
    with pytest.raises(access.AccessDenied, match="CITYBRAIN_GRANTS|CITYBRAIN_USER"):
        sharing.connect(lake["consumer"])
    with pytest.raises(access.AccessDenied):
        sqlalchemy.create_engine("citybrain://").connect()
    monkeypatch.delenv("CITYBRAIN_USER")
    with pytest.raises(access.AccessDenied, match="CITYBRAIN_GRANTS is set"):
        sharing.read_audit_log("SELECT * FROM audit")
    monkeypatch.delenv("CITYBRAIN_GRANTS")

    # A name on the command line or in the URL is refused too.
    with pytest.raises(SystemExit) as exit_:
        citybrain(["query", "SELECT * FROM pool.fct_visit", "--user", "mallory"])
    assert exit_.value.code == 2 and "--user is no identity" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        citybrain(["audit", "query", "SELECT * FROM audit", "--user", "mallory"])
    with pytest.raises(SystemExit):
        citybrain(["trace", "pool.fct_visit", "--key", "visit_no=4", "--user", "mallory"])
    assert citybrain(["trace", "pool.fct_visit", "--key", "visit_no=4"]) == 2  # a row is read: who reads it?
    assert "who is reading?" in capsys.readouterr().err
    for url in ("citybrain://?user=mallory", "citybrain://mallory@/"):
        with pytest.raises(access.AccessDenied, match="'mallory'.*no identity"):
            sqlalchemy.create_engine(url).connect()
    with pytest.raises(access.AccessDenied):
        access.connect(user="mallory")
    assert reads_ok_by("mallory") == [], "nothing was read as mallory"
    assert not [r for r in audit.read_records() if r["action"] == "query" and r["outcome"] == "ok"]


def test_a_token_reads_only_its_granted_columns_and_rows_through_the_cli(lake, capsys, tmp_path):
    token = lake["consumer"]
    out = tmp_path / "visits.csv"
    sql = "SELECT * FROM pool.fct_visit ORDER BY visit_no"
    assert citybrain(["query", sql, "--token", token, "--out", str(out)]) == 0
    frame = pd.read_csv(out, dtype={"area_code": str})
    assert frame.columns.tolist() == ["area_code", "visit_no"]
    assert frame["visit_no"].tolist() == EVEN_VISITS and set(frame["area_code"]) == {"330106"}
    assert citybrain(["query", "SELECT count(*) AS n FROM fct_visit", "--token", token]) == 0
    assert "(1 rows)" in capsys.readouterr().out
    record = audit.read_records()[-1]
    (grant,) = grants.active_grants(lake["store"], lake["consumer_id"])
    assert (record["user"], record["grant_id"], record["rows"], record["via"]) == (
        "li_analyst",
        grant.id,
        1,
        "cli",
    )

    for refused in (
        "SELECT person_pseudonym FROM pool.fct_visit",
        "SELECT * FROM pool.dim_area",
        "SELECT * FROM citybrain_conditional.pool.fct_visit",
    ):
        assert citybrain(["query", refused, "--token", token]) == 2
        err = capsys.readouterr().err
        assert "QueryRejected" in err and "p0" not in err
    # the row filter holds whatever the query asks
    assert citybrain(["query", "SELECT * FROM fct_visit WHERE area_code = '330108'", "--token", token]) == 0
    assert "(0 rows)" in capsys.readouterr().out


def test_a_token_reads_only_its_granted_columns_and_rows_through_sqlalchemy(lake, monkeypatch):
    engine = sqlalchemy.create_engine(f"citybrain://?token={lake['consumer']}")
    frame = pd.read_sql("SELECT * FROM pool.fct_visit ORDER BY visit_no", engine)
    assert frame.columns.tolist() == ["area_code", "visit_no"]
    assert frame["visit_no"].tolist() == EVEN_VISITS and set(frame["area_code"]) == {"330106"}
    record = audit.read_records()[-1]
    assert (record["via"], record["user"], record["tables"]) == (
        "sqlalchemy",
        "li_analyst",
        ["pool.fct_visit"],
    )
    assert record["grant_id"] is not None
    with engine.connect() as con:
        assert con.execute(sqlalchemy.text("SELECT max(visit_no) FROM pool.fct_visit")).scalar() == 18
        for sql in ("SELECT person_pseudonym FROM pool.fct_visit", "SELECT * FROM pool.dim_area",
                    "SELECT * FROM duckdb_tables()", "SELECT * FROM information_schema.tables"):  # fmt: skip
            with pytest.raises(access.QueryRejected):
                con.execute(sqlalchemy.text(sql))
    assert audit.read_records()[-1]["outcome"] == "rejected"
    # in the password slot SQLAlchemy masks it; from the environment it stays out of the URL altogether
    masked = sqlalchemy.create_engine(f"citybrain://:{lake['consumer']}@")
    assert lake["consumer"] not in repr(masked)
    with masked.connect() as con:
        assert con.execute(sqlalchemy.text("SELECT count(*) FROM pool.fct_visit")).scalar() == 10
    monkeypatch.setenv("CITYBRAIN_SHARING_TOKEN", lake["consumer"])
    with sqlalchemy.create_engine("citybrain://").connect() as con:
        assert con.execute(sqlalchemy.text("SELECT count(*) FROM pool.fct_visit")).scalar() == 10


def _tampered(secret: str) -> str:
    last = secret[-1]
    return secret[:-1] + ("A" if last != "A" else "B")


def test_tampered_expired_and_revoked_tokens_are_refused(lake, capsys):
    store = lake["store"]
    sql = "SELECT count(*) FROM pool.fct_visit"
    expired, _ = token_for(
        store, "expired_user", grants=[VISIT_GRANT], expires_at=utcnow() - timedelta(seconds=1)
    )
    revoked, revoked_account = token_for(store, "revoked_user", grants=[VISIT_GRANT])
    (revoked_id,) = [t["id"] for t in tokens.list_tokens(store) if t["account_id"] == revoked_account]
    with sqlalchemy.create_engine(f"citybrain://?token={revoked}").connect() as held:
        assert held.execute(sqlalchemy.text(sql)).scalar() == 10
        tokens.revoke_token(store, revoked_id, by="test")
        with pytest.raises(TokenInvalid):  # an open connection stops at its next statement
            held.execute(sqlalchemy.text(sql))
    for bad in (_tampered(lake["consumer"]), expired, revoked, "cbl_" + "x" * 43, "not a token"):
        assert citybrain(["query", sql, "--token", bad]) == 2
        assert "TokenInvalid" in capsys.readouterr().err
        with pytest.raises(TokenInvalid):
            sqlalchemy.create_engine(f"citybrain://?token={bad}").connect()
        with pytest.raises(TokenInvalid):
            sharing.read_sql(sql, bad)
        assert audit.read_records()[-1]["outcome"] == "denied"


def test_an_ended_or_revoked_grant_serves_nothing(lake):
    store = lake["store"]
    secret, account_id = token_for(store, "short_grant", grants=[VISIT_GRANT])
    with sharing.connect(secret) as session:
        assert session.query("SELECT count(*) AS n FROM pool.fct_visit").to_pylist() == [{"n": 10}]
        (grant,) = grants.active_grants(store, account_id)
        grants.revoke_grant(store, grant.id, by="test")
        with pytest.raises(access.AccessDenied, match="no active grant"):
            session.query("SELECT count(*) AS n FROM pool.fct_visit")


def test_the_auditor_token_reads_the_audit_log_and_a_consumer_token_cannot(lake, capsys):
    assert citybrain(["audit", "query", "SELECT user, action FROM audit WHERE action = 'query'",
                      "--token", lake["auditor"]]) == 0  # fmt: skip
    assert "li_analyst" in capsys.readouterr().out
    assert audit.read_records()[-1]["user"] == "zhao_auditor"
    assert citybrain(["audit", "query", "SELECT count(*) FROM audit", "--token", lake["consumer"]]) == 2
    assert "may not read the audit log" in capsys.readouterr().err
    denied = audit.read_records()[-1]
    assert (denied["action"], denied["outcome"], denied["user"]) == ("audit_query", "denied", "li_analyst")
    assert (
        citybrain(["audit", "query", "SELECT count(*) FROM audit", "--token", _tampered(lake["auditor"])])
        == 2
    )
    rows = sharing.read_audit_log("SELECT count(*) AS n FROM audit", lake["auditor"]).to_pylist()
    assert rows[0]["n"] > 0
    assert audit.verify().ok
    assert json.dumps(audit.read_records()).count(lake["consumer"]) == 0, "no token secret in the log"
