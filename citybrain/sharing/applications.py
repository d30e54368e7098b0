"""Applications and approvals (申请 → 审核 → 授权): who asks for what, who decides, and the clocks.

* A consumer applies for a resource code with a purpose, columns, optionally rows (allowed values of one
  column, e.g. district codes), an end date and a delivery (``api`` or ``table``).
* Open tier: the providing department's approver answers within ``open_answer`` working days.
* Conditional tier: the data office reviews within ``conditional_review`` days and forwards it; then the
  provider replies within ``provider_reply`` days (``provider_reply_not_on_platform`` if the data is not on
  the platform yet).
* The approver approves, narrows (fewer columns, fewer rows, an earlier end) or refuses with a reason; an
  approval or narrowing creates the grant. The data office may escalate an application (it then decides)
  or decide any pending application itself.

Each step is audited with the application id; ``overdue`` lists applications whose running clock has passed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

from sqlalchemy import select, update

from citybrain.access import audit
from citybrain.sharing.accounts import Account
from citybrain.sharing.config import SharingConfig
from citybrain.sharing.grants import create_grant
from citybrain.sharing.resources import ShareableResource
from citybrain.sharing.store import DELIVERIES, Store, record_from_row, utcnow
from citybrain.sharing.workdays import Calendar

PENDING = ("submitted", "forwarded", "escalated")
DECIDED = ("approved", "narrowed", "refused")


class ApplicationError(ValueError):
    """An application or decision that is not allowed; the message says why."""


@dataclass(frozen=True)
class Application:
    id: int
    consumer_id: int
    resource_code: str
    table: str
    tier: str
    provider_department: str
    purpose: str
    columns: tuple[str, ...]
    row_filter_column: str | None
    row_filter_values: tuple[str, ...] | None
    period_end: date
    delivery: str
    on_platform: bool
    status: str
    submitted_at: datetime
    stage_started_on: date
    due_on: date | None
    reason: str | None
    grant_id: int | None

    @classmethod
    def from_row(cls, row) -> Application:
        return record_from_row(cls, row)


def calendar_of(config: SharingConfig) -> Calendar:
    return Calendar(config.holidays, config.workdays)


def apply(
    store: Store,
    config: SharingConfig,
    consumer: Account,
    resource: ShareableResource,
    *,
    purpose: str,
    columns: list[str],
    period_end: date,
    delivery: str = "api",
    row_filter_column: str | None = None,
    row_filter_values: list[str] | None = None,
    on_platform: bool = True,
    today: date | None = None,
) -> Application:
    today = today or utcnow().date()
    if consumer.role != "consumer":
        raise ApplicationError(f"{consumer.name} is a {consumer.role}: only consumer accounts apply")
    if not purpose or len(purpose.strip()) < 5:
        raise ApplicationError("state the purpose (at least a few words)")
    if delivery not in DELIVERIES:
        raise ApplicationError(f"delivery must be one of {', '.join(DELIVERIES)}, not {delivery!r}")
    if not columns:
        raise ApplicationError("name the columns you need")
    unknown = sorted(set(columns) - set(resource.columns))
    if unknown:
        raise ApplicationError(f"{resource.code} has no column(s) {', '.join(unknown)}")
    _check_row_filter(resource.columns, row_filter_column, row_filter_values)
    if period_end <= today:
        raise ApplicationError(f"the period must end after today ({today.isoformat()})")
    clock = config.clocks.open_answer if resource.tier == "open" else config.clocks.conditional_review
    due = calendar_of(config).add_working_days(today, clock)
    with store.engine.begin() as con:
        application_id = con.execute(
            store.applications.insert().values(
                consumer_id=consumer.id,
                resource_code=resource.code,
                table_name=resource.table,
                tier=resource.tier,
                provider_department=resource.provider_code,
                purpose=purpose.strip(),
                columns=list(dict.fromkeys(columns)),
                row_filter_column=row_filter_column,
                row_filter_values=list(row_filter_values) if row_filter_values is not None else None,
                period_end=period_end,
                delivery=delivery,
                on_platform=on_platform,
                status="submitted",
                submitted_at=utcnow(),
                stage_started_on=today,
                due_on=due,
            )
        ).inserted_primary_key[0]
    _audit(consumer, application_id, resource, f"applied: {purpose.strip()[:200]}; answer due {due}")
    return get_application(store, application_id)


def forward(
    store: Store, config: SharingConfig, reviewer: Account, application_id: int, *, today: date | None = None
) -> Application:
    """The data office's review of a conditional application passes it to the provider; the reply clock starts."""
    today = today or utcnow().date()
    application = get_application(store, application_id)
    if reviewer.role != "data_office":
        raise ApplicationError("only the data office reviews and forwards applications")
    if application.tier != "conditional" or application.status != "submitted":
        raise ApplicationError(
            f"application {application_id} is {application.status} ({application.tier} tier): "
            "only submitted conditional applications are forwarded"
        )
    clocks = config.clocks
    days = clocks.provider_reply if application.on_platform else clocks.provider_reply_not_on_platform
    due = calendar_of(config).add_working_days(today, days)
    _set(store, application_id, status="forwarded", stage_started_on=today, due_on=due)
    _audit(reviewer, application_id, application, f"reviewed and forwarded to the provider; reply due {due}")
    return get_application(store, application_id)


def escalate(store: Store, officer: Account, application_id: int, reason: str) -> Application:
    """The data office takes a pending application over (e.g. the provider does not answer); the clock runs on."""
    application = get_application(store, application_id)
    if officer.role != "data_office":
        raise ApplicationError("only the data office escalates applications")
    if application.status not in PENDING:
        raise ApplicationError(f"application {application_id} is {application.status}, not pending")
    if not reason or not reason.strip():
        raise ApplicationError("say why the application is escalated")
    _set(store, application_id, status="escalated", reason=reason.strip())
    _audit(officer, application_id, application, f"escalated: {reason.strip()}")
    return get_application(store, application_id)


def decide(
    store: Store,
    approver: Account,
    application_id: int,
    decision: str,
    *,
    reason: str | None = None,
    columns: list[str] | None = None,
    row_filter_column: str | None = None,
    row_filter_values: list[str] | None = None,
    period_end: date | None = None,
) -> Application:
    """``approve`` as asked, ``narrow`` (fewer columns/rows, earlier end; a reason is required) or ``refuse``
    (a reason is required). Approving or narrowing creates the grant in the same transaction."""
    application = get_application(store, application_id)
    _check_may_decide(approver, application)
    if decision not in ("approve", "narrow", "refuse"):
        raise ApplicationError(f"decision must be approve, narrow or refuse, not {decision!r}")
    if decision in ("narrow", "refuse") and not (reason and reason.strip()):
        raise ApplicationError(f"a decision to {decision} needs a reason")
    if decision == "refuse":
        _set(store, application_id, status="refused", reason=reason.strip(), due_on=None,
             decided_at=utcnow(), decided_by=approver.id)  # fmt: skip
        _audit(approver, application_id, application, f"refused: {reason.strip()}")
        return get_application(store, application_id)
    granted_columns = list(application.columns)
    filter_column, filter_values = application.row_filter_column, application.row_filter_values
    end = application.period_end
    if decision == "narrow":
        granted_columns, filter_column, filter_values, end = _narrowed(
            application, columns, row_filter_column, row_filter_values, period_end
        )
    ends_at = datetime.combine(end + timedelta(days=1), time())  # through the last day of the period (UTC)
    with store.engine.begin() as con:
        grant_id = create_grant(
            store,
            account_id=application.consumer_id,
            table=application.table,
            tier=application.tier,
            columns=granted_columns,
            ends_at=ends_at,
            row_filter_column=filter_column,
            row_filter_values=list(filter_values) if filter_values is not None else None,
            delivery=application.delivery,
            application_id=application_id,
            granted_by=approver.id,
            by=approver.name,
            connection=con,
        )
        con.execute(
            update(store.applications)
            .where(store.applications.c.id == application_id)
            .values(status="approved" if decision == "approve" else "narrowed", due_on=None,
                    reason=reason.strip() if reason else None, decided_at=utcnow(), decided_by=approver.id,
                    grant_id=grant_id)
        )  # fmt: skip
    _audit(approver, application_id, application, f"{decision}d" if decision == "approve" else f"narrowed: {reason}",
           grant_id=grant_id)  # fmt: skip
    return get_application(store, application_id)


def get_application(store: Store, application_id: int) -> Application:
    with store.engine.connect() as con:
        row = con.execute(select(store.applications).where(store.applications.c.id == application_id)).first()
    if row is None:
        raise ApplicationError(f"no application {application_id}")
    return Application.from_row(row)


def list_applications(store: Store, *, consumer_id: int | None = None, department: str | None = None,
                      status: str | None = None) -> list[Application]:  # fmt: skip
    a = store.applications
    query = select(a).order_by(a.c.id)
    if consumer_id is not None:
        query = query.where(a.c.consumer_id == consumer_id)
    if department is not None:
        query = query.where(a.c.provider_department == department)
    if status is not None:
        query = query.where(a.c.status == status)
    with store.engine.connect() as con:
        return [Application.from_row(r) for r in con.execute(query)]


def overdue(store: Store, today: date | None = None) -> list[Application]:
    """Pending applications whose running clock ended before ``today`` (the due day itself is still in time)."""
    today = today or utcnow().date()
    a = store.applications
    with store.engine.connect() as con:
        rows = con.execute(
            select(a).where(a.c.status.in_(PENDING), a.c.due_on < today).order_by(a.c.due_on, a.c.id)
        ).all()
    return [Application.from_row(r) for r in rows]


# --- rules ------------------------------------------------------------------------------------------------
def _check_may_decide(approver: Account, application: Application) -> None:
    if application.status not in PENDING:
        raise ApplicationError(f"application {application.id} is {application.status} already")
    if approver.role == "data_office":
        return
    if approver.role != "provider_approver":
        raise ApplicationError(f"{approver.name} ({approver.role}) may not decide applications")
    if approver.department != application.provider_department:
        raise ApplicationError(
            f"{approver.name} approves for {approver.department}; application {application.id} is for "
            f"{application.provider_department}"
        )
    if application.status == "escalated":
        raise ApplicationError(f"application {application.id} was escalated: the data office decides")
    if application.tier == "conditional" and application.status != "forwarded":
        raise ApplicationError(
            f"application {application.id} (conditional) waits for the data office's review first"
        )


def _check_row_filter(columns, row_filter_column, row_filter_values) -> None:
    if (row_filter_column is None) != (row_filter_values is None):
        raise ApplicationError("a row filter needs both a column and its values")
    if row_filter_column is not None:
        if row_filter_column not in columns:
            raise ApplicationError(f"no column {row_filter_column} to filter rows on")
        if not row_filter_values:
            raise ApplicationError("a row filter needs at least one value")


def _narrowed(application: Application, columns, row_filter_column, row_filter_values, period_end):
    """Check that a narrowing gives no more than was asked for, and return what the grant gets."""
    granted = list(columns) if columns else list(application.columns)
    extra = sorted(set(granted) - set(application.columns))
    if extra:
        raise ApplicationError(f"narrowing cannot add columns: {', '.join(extra)} were not asked for")
    filter_column, filter_values = application.row_filter_column, application.row_filter_values
    if row_filter_values is not None:
        wanted_column = row_filter_column or filter_column
        if wanted_column is None:
            raise ApplicationError("name the column the narrowed row filter applies to")
        if filter_column is None and wanted_column not in application.columns:
            raise ApplicationError(
                f"a new row filter applies to one of the requested columns ({', '.join(application.columns)})"
            )
        if filter_column is not None:
            if wanted_column != filter_column:
                raise ApplicationError(
                    f"the application filters rows on {filter_column}, not {wanted_column}"
                )
            more = sorted(set(map(str, row_filter_values)) - set(filter_values))
            if more:
                raise ApplicationError(f"narrowing cannot add rows: {', '.join(more)} were not asked for")
        if not row_filter_values:
            raise ApplicationError("a narrowed row filter keeps at least one value")
        filter_column, filter_values = wanted_column, tuple(map(str, row_filter_values))
    end = period_end or application.period_end
    if end > application.period_end:
        raise ApplicationError("narrowing cannot lengthen the period")
    return granted, filter_column, filter_values, end


def _set(store: Store, application_id: int, **values) -> None:
    with store.engine.begin() as con:
        con.execute(
            update(store.applications).where(store.applications.c.id == application_id).values(**values)
        )


def _audit(actor: Account, application_id: int, subject, detail: str, grant_id: int | None = None) -> None:
    audit.append(
        "application",
        outcome="ok",
        user=actor.name,
        via="sharing",
        tiers=[subject.tier],
        tables=[subject.table],
        application_id=application_id,
        grant_id=grant_id,
        detail=detail,
    )


def overdue_report(store: Store | None = None, today: date | None = None) -> list[dict] | None:
    """Overdue applications for ``citybrain status``: None when the lake has no sharing database yet (the
    default SQLite file is not created just to say so)."""
    from citybrain import settings

    if store is None:
        url = settings.sharing_db_url()
        if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
            return None
        store = Store(url)
    today = today or utcnow().date()
    return [
        {"application_id": a.id, "resource_code": a.resource_code, "tier": a.tier, "status": a.status,
         "provider": a.provider_department, "due_on": a.due_on.isoformat(),
         "days_late": (today - a.due_on).days}
        for a in overdue(store, today)
    ]  # fmt: skip
