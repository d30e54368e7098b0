"""The sharing workflow in a real database (SQLite, and the local PostgreSQL): accounts with argon2 hashes
and lockout, tokens stored hashed, apply → review → approve/narrow/refuse → grant, working-day clocks,
overdue applications, and every step audited with its application id."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from citybrain.access import audit
from citybrain.sharing import accounts, applications, grants, tokens
from citybrain.sharing.config import Clocks, Limits, SharingConfig, load_config
from citybrain.sharing.store import utcnow
from citybrain.sharing.workdays import Calendar
from tests.sharing_lake import AREA_CODE, VISIT_CODE, sharing_store, write_catalog

PASSWORD = "correct horse battery"
FRIDAY = date(2026, 12, 4)  # 2026-12-02 is a Wednesday
CONFIG = SharingConfig(
    clocks=Clocks(open_answer=2, conditional_review=2, provider_reply=5, provider_reply_not_on_platform=10),
    holidays=[date(2026, 12, 8)],
    limits=Limits(login_failures=3, login_lockout_seconds=600),
)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, lake, tmp_path):
    with sharing_store(request.param, tmp_path) as store:
        yield store


@pytest.fixture
def resources(lake):
    return write_catalog(lake / "catalog.json")


@pytest.fixture
def people(store):
    make = accounts.create_account
    return {
        "consumer": make(store, "li_analyst", "CJJ", "consumer", PASSWORD),
        "wjw": make(store, "wang_wjw", "WJW", "provider_approver", PASSWORD),
        "sjj": make(store, "zhao_sjj", "SJJ", "provider_approver", PASSWORD),
        "office": make(store, "chen_office", "SJJ", "data_office", PASSWORD),
    }


def test_working_days_skip_weekends_holidays_and_count_make_up_days():
    calendar = Calendar(holidays=[date(2026, 12, 8)], workdays=[date(2026, 12, 5)])
    # Friday + 2: Saturday 5th is a make-up working day (1), Monday 7th (2).
    assert calendar.add_working_days(FRIDAY, 2) == date(2026, 12, 7)
    # Without the make-up day: Monday 7th (1), Tuesday 8th is a holiday, Wednesday 9th (2).
    assert Calendar(holidays=[date(2026, 12, 8)]).add_working_days(FRIDAY, 2) == date(2026, 12, 9)
    assert Calendar().working_days_between(FRIDAY, date(2026, 12, 11)) == 5


def test_shipped_configuration_loads():
    config = load_config()
    assert (config.clocks.open_answer, config.clocks.conditional_review) == (2, 2)
    assert (config.clocks.provider_reply, config.clocks.provider_reply_not_on_platform) == (5, 10)
    assert all(day.year >= 2026 for day in config.holidays)


def test_passwords_are_argon2_hashed_and_repeated_failures_lock_the_account(store, people):
    with store.engine.connect() as con:
        stored = con.execute(select(store.accounts.c.password_hash)).scalars().all()
    assert all(h.startswith("$argon2id$") and PASSWORD not in h for h in stored)
    assert accounts.authenticate(store, "li_analyst", PASSWORD, CONFIG.limits).name == "li_analyst"
    for _ in range(3):
        with pytest.raises(accounts.LoginFailed):
            accounts.authenticate(store, "li_analyst", "guess-guess-guess", CONFIG.limits)
    with pytest.raises(accounts.LoginFailed):  # locked: even the right password is refused now
        accounts.authenticate(store, "li_analyst", PASSWORD, CONFIG.limits)
    assert accounts.locked_until(store, "li_analyst") > utcnow() + timedelta(seconds=500)
    denied = [r for r in audit.read_records() if r["action"] == "login" and r["outcome"] == "denied"]
    assert len(denied) == 4 and "locked until" in denied[-1]["detail"]
    with pytest.raises(accounts.AccountError, match="role"):
        accounts.create_account(store, "x", "SJJ", "superuser", PASSWORD)


def test_tokens_are_stored_hashed_and_stop_working_when_revoked_or_expired(store, people):
    issued = tokens.issue_token(store, people["consumer"], "report tool")
    with store.engine.connect() as con:
        hashes = con.execute(select(store.tokens.c.secret_hash)).scalars().all()
    assert issued.secret not in hashes and len(hashes[0]) == 64
    assert tokens.resolve_token(store, issued.secret).account.name == "li_analyst"
    with pytest.raises(tokens.TokenInvalid):  # one character changed
        tokens.resolve_token(store, issued.secret[:-1] + ("A" if issued.secret[-1] != "A" else "B"))
    tokens.revoke_token(store, issued.id, by="test")
    with pytest.raises(tokens.TokenInvalid):
        tokens.resolve_token(store, issued.secret)
    short = tokens.issue_token(store, people["consumer"], "short", expires_at=utcnow() + timedelta(seconds=1))
    with store.engine.begin() as con:  # let it expire without waiting
        con.execute(store.tokens.update().values(expires_at=utcnow() - timedelta(seconds=1)))
    with pytest.raises(tokens.TokenInvalid):
        tokens.resolve_token(store, short.secret)


def test_open_application_is_approved_by_the_provider_into_a_grant(store, people, resources):
    application = applications.apply(
        store, CONFIG, people["consumer"], resources[AREA_CODE],
        purpose="district planning dashboard", columns=["area_code", "area_name"],
        period_end=date(2027, 3, 31), today=FRIDAY,
    )  # fmt: skip
    # Open tier: answered within 2 working days of Friday; Tuesday 8th is a holiday → Wednesday 9th.
    assert (application.status, application.due_on) == ("submitted", date(2026, 12, 9))
    with pytest.raises(applications.ApplicationError, match="approves for WJW"):
        applications.decide(store, people["wjw"], application.id, "approve")
    with pytest.raises(applications.ApplicationError, match="consumer"):
        applications.decide(store, people["consumer"], application.id, "approve")
    decided = applications.decide(store, people["sjj"], application.id, "approve")
    assert decided.status == "approved" and decided.due_on is None
    grant = grants.get_grant(store, decided.grant_id)
    assert (grant.table, grant.columns, grant.tier, grant.delivery) == (
        "pool.dim_area", ("area_code", "area_name"), "open", "api")  # fmt: skip
    assert grant.ends_at == datetime(2027, 4, 1) and grant.active()
    records = [r for r in audit.read_records() if r["application_id"] == application.id]
    assert [r["action"] for r in records] == ["application", "grant", "application"]
    assert records[-1]["grant_id"] == grant.id and records[1]["grant_id"] == grant.id


def test_conditional_application_is_reviewed_then_narrowed(store, people, resources):
    application = applications.apply(
        store, CONFIG, people["consumer"], resources[VISIT_CODE],
        purpose="visits per district for the health report", columns=["area_code", "visit_no"],
        row_filter_column="area_code", row_filter_values=["330106", "330108"],
        period_end=date(2027, 6, 30), today=FRIDAY, on_platform=False,
    )  # fmt: skip
    assert application.due_on == date(2026, 12, 9)  # review clock: 2 working days
    with pytest.raises(applications.ApplicationError, match="review first"):
        applications.decide(store, people["wjw"], application.id, "approve")
    forwarded = applications.forward(store, CONFIG, people["office"], application.id, today=date(2026, 12, 7))
    # Not yet on the platform: 10 working days from Monday 7th, skipping the 8th and two weekends → 22nd.
    assert (forwarded.status, forwarded.due_on) == ("forwarded", date(2026, 12, 22))
    with pytest.raises(applications.ApplicationError, match="cannot add rows"):
        applications.decide(store, people["wjw"], application.id, "narrow", reason="x",
                            row_filter_values=["330106", "330110"])  # fmt: skip
    with pytest.raises(applications.ApplicationError, match="needs a reason"):
        applications.decide(store, people["wjw"], application.id, "narrow", row_filter_values=["330106"])
    narrowed = applications.decide(
        store, people["wjw"], application.id, "narrow", reason="one district is enough",
        row_filter_values=["330106"], period_end=date(2027, 1, 31),
    )  # fmt: skip
    grant = grants.get_grant(store, narrowed.grant_id)
    assert (narrowed.status, grant.row_filter_values, grant.ends_at) == (
        "narrowed", ("330106",), datetime(2027, 2, 1))  # fmt: skip


def test_refusal_needs_a_reason_and_escalation_hands_the_decision_to_the_data_office(
    store, people, resources
):
    def new():
        return applications.apply(
            store, CONFIG, people["consumer"], resources[VISIT_CODE], purpose="research on visits",
            columns=["visit_no"], period_end=date(2027, 1, 1), today=FRIDAY,
        )  # fmt: skip

    first, second = new(), new()
    applications.forward(store, CONFIG, people["office"], first.id, today=FRIDAY)
    with pytest.raises(applications.ApplicationError, match="reason"):
        applications.decide(store, people["wjw"], first.id, "refuse")
    refused = applications.decide(store, people["wjw"], first.id, "refuse", reason="no legal basis stated")
    assert (refused.status, refused.reason, refused.grant_id) == ("refused", "no legal basis stated", None)
    applications.escalate(store, people["office"], second.id, "provider does not answer")
    with pytest.raises(applications.ApplicationError, match="escalated"):
        applications.decide(store, people["wjw"], second.id, "approve")
    with pytest.raises(applications.ApplicationError, match="one of the requested columns"):
        applications.decide(store, people["office"], second.id, "narrow", reason="fewer rows",
                            row_filter_column="area_code", row_filter_values=["330106"])  # fmt: skip
    narrowed = applications.decide(store, people["office"], second.id, "narrow", reason="fewer rows",
                                   row_filter_column="visit_no", row_filter_values=["4"])  # fmt: skip
    assert grants.get_grant(store, narrowed.grant_id).row_filter_values == ("4",)


def test_overdue_lists_pending_applications_past_their_clock(store, people, resources):
    late = applications.apply(
        store, CONFIG, people["consumer"], resources[AREA_CODE], purpose="planning dashboard",
        columns=["area_code"], period_end=date(2027, 1, 1), today=FRIDAY,
    )  # fmt: skip
    done = applications.apply(
        store, CONFIG, people["consumer"], resources[AREA_CODE], purpose="planning dashboard",
        columns=["area_code"], period_end=date(2027, 1, 1), today=FRIDAY,
    )  # fmt: skip
    applications.decide(store, people["sjj"], done.id, "approve")
    assert applications.overdue(store, today=date(2026, 12, 9)) == []  # the due day itself is in time
    assert [a.id for a in applications.overdue(store, today=date(2026, 12, 10))] == [late.id]
    (report,) = applications.overdue_report(store, today=date(2026, 12, 10))
    assert (report["application_id"], report["due_on"], report["days_late"]) == (late.id, "2026-12-09", 1)


def test_bad_applications_are_refused_with_a_clear_error(store, people, resources):
    apply = applications.apply
    area = resources[AREA_CODE]
    with pytest.raises(applications.ApplicationError, match="no column"):
        apply(store, CONFIG, people["consumer"], area, purpose="planning", columns=["id_number"],
              period_end=date(2027, 1, 1), today=FRIDAY)  # fmt: skip
    with pytest.raises(applications.ApplicationError, match="only consumer"):
        apply(store, CONFIG, people["wjw"], area, purpose="planning", columns=["area_code"],
              period_end=date(2027, 1, 1), today=FRIDAY)  # fmt: skip
    with pytest.raises(applications.ApplicationError, match="end after today"):
        apply(store, CONFIG, people["consumer"], area, purpose="planning", columns=["area_code"],
              period_end=FRIDAY, today=FRIDAY)  # fmt: skip
    with pytest.raises(applications.ApplicationError, match="delivery"):
        apply(store, CONFIG, people["consumer"], area, purpose="planning", columns=["area_code"],
              period_end=date(2027, 1, 1), delivery="email", today=FRIDAY)  # fmt: skip
