"""The portal's pages (门户): catalog, resource, application form, approver's inbox, my grants and tokens,
the data office's overview, and login. Server-rendered Jinja2, Chinese first with English second.

Every page needs a session (``session.viewer``); a GET without one is sent to the login page. Every POST
goes through ``forms.posted_form``, which refuses it unless its CSRF token matches the browser's session.
The pages call the same library as the CLI and the API (accounts, applications, grants, tokens, reader):
the portal adds no rule of its own, so whatever it lets a person do, the library has checked.

No ``from __future__ import annotations`` here: FastAPI reads the endpoint annotations at run time.
"""

import contextlib
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from citybrain.governance.grades import grade_label
from citybrain.resource_catalog.build import CLASSIFICATION_ZH
from citybrain.sharing import applications as apps
from citybrain.sharing.accounts import LoginFailed, authenticate, list_accounts
from citybrain.sharing.config import SharingConfig
from citybrain.sharing.grants import active_grants, list_grants
from citybrain.sharing.portal.catalog_view import FRESHNESS, CatalogSource, Filters, choices, freshness
from citybrain.sharing.portal.forms import Form, posted_form
from citybrain.sharing.portal.samples import sample_rows
from citybrain.sharing.portal.session import (
    CSRF_FIELD,
    csrf_token,
    end_session,
    ensure_pre_session,
    remember_pre_session,
    start_session,
    viewer,
)
from citybrain.sharing.resources import UnknownResource, load_resources
from citybrain.sharing.store import Store, utcnow
from citybrain.sharing.tokens import TokenInvalid, TokenOwner, issue_token, list_tokens, revoke_token

TEMPLATE_DIR = Path(__file__).with_name("templates")
PREFIX = "/portal"
EXPIRY_WARNING_DAYS = 14  # the overview lists grants ending within this many days
TOKEN_DAYS_DEFAULT, TOKEN_DAYS_MAX = 90, 366
DECIDERS = ("provider_approver", "data_office")
OVERSEERS = ("data_office", "auditor")
# Only our own files: no CDN, no inline script or style, forms post only here, no framing.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
STATUS_LABELS = {
    "submitted": ("已提交", "submitted"),
    "forwarded": ("已转提供方", "forwarded to the provider"),
    "escalated": ("已提级", "escalated"),
    "approved": ("已批准", "approved"),
    "narrowed": ("已缩小范围批准", "approved, narrowed"),
    "refused": ("已拒绝", "refused"),
}
ROLE_LABELS = {
    "consumer": ("数据使用方", "consumer"),
    "provider_approver": ("提供方审核人", "provider approver"),
    "data_office": ("数据主管部门", "data office"),
    "auditor": ("审计员", "auditor"),
}


class PortalError(Exception):
    """A page that cannot be shown or an action that is not allowed; rendered as an error page."""

    def __init__(self, status: int, zh: str, en: str):
        super().__init__(en)
        self.status, self.zh, self.en = status, zh, en


class LoginRequired(Exception):
    def __init__(self, next_path: str):
        super().__init__(next_path)
        self.next_path = next_path


def bilingual(zh: str, en: str) -> Markup:
    """Chinese first, English second (the English smaller, marked as English for screen readers)."""
    return Markup('{} <span class="en" lang="en">{}</span>').format(zh, en)


def safe_next(target: str | None) -> str:
    """Where to go after login: a portal page only (never another site)."""
    if target and target.startswith(f"{PREFIX}/") and not target.startswith("//") and "\\" not in target:
        return target
    return f"{PREFIX}/catalog"


def build_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATE_DIR))
    env = templates.env
    env.trim_blocks = env.lstrip_blocks = True
    env.globals.update(
        t=bilingual, status_labels=STATUS_LABELS, role_labels=ROLE_LABELS, freshness_labels=FRESHNESS,
        tier_zh=CLASSIFICATION_ZH, grade_label=grade_label, csrf_field=CSRF_FIELD, prefix=PREFIX,
    )  # fmt: skip
    return templates


def portal_router(
    store: Store, config: SharingConfig, pool_directory: Path | None, catalog: CatalogSource
) -> APIRouter:
    router = APIRouter(prefix=PREFIX, include_in_schema=False)
    templates = build_templates()

    def render(request: Request, name: str, status: int = 200, me: TokenOwner | None = None, **context):
        ensure_pre_session(request)
        response = templates.TemplateResponse(
            request, name, {"me": me, "csrf": csrf_token(request), **context}, status_code=status
        )
        remember_pre_session(request, response)
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    def signed_in(request: Request) -> TokenOwner:
        owner = viewer(store, request)
        if owner is None:
            path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise LoginRequired(path)
        return owner

    def role_in(me: TokenOwner, roles: tuple[str, ...], zh: str, en: str) -> None:
        if me.account.role not in roles:
            raise PortalError(403, f"{zh}（当前角色：{ROLE_LABELS[me.account.role][0]}）", en)

    Me = Annotated[TokenOwner, Depends(signed_in)]
    Posted = Annotated[Form, Depends(posted_form)]

    def see_other(path: str) -> RedirectResponse:
        return RedirectResponse(path, status_code=303)

    def names() -> dict[int, str]:
        return {a.id: f"{a.name}（{a.department}）" for a in list_accounts(store)}

    def resource_names() -> dict[str, str]:
        try:
            return {r.code: r.name for r in catalog.load().resources}
        except FileNotFoundError:
            return {}

    def shareable() -> dict:
        try:
            return load_resources(catalog.path)
        except UnknownResource:
            return {}

    # --- login ---------------------------------------------------------------------------------------------
    @router.get("", response_class=Response)
    @router.get("/", response_class=Response)
    def home():
        return see_other(f"{PREFIX}/catalog")

    @router.get("/login")
    def login_page(request: Request, next: str = ""):  # noqa: A002
        return render(request, "login.html", next=safe_next(next))

    @router.post("/login")
    def login(request: Request, form: Posted):
        target = safe_next(form.get("next"))
        try:
            account = authenticate(store, form.get("name"), form.fields.get("password", [""])[0],
                                   config.limits, via="portal")  # fmt: skip
        except LoginFailed:
            return render(request, "login.html", 401, next=target, failed=True, typed_name=form.get("name"))
        response = see_other(target)
        start_session(store, account, response, request)
        return response

    @router.post("/logout")
    def logout(request: Request, _form: Posted):
        response = see_other(f"{PREFIX}/login")
        end_session(store, request, response)
        return response

    # --- catalog -------------------------------------------------------------------------------------------
    @router.get("/catalog")
    def catalog_page(request: Request, me: Me):
        q = request.query_params
        filters = Filters(**{f: q.get(f, "").strip() for f in Filters.__dataclass_fields__})
        data = catalog.load()
        now = utcnow()
        found = [(r, freshness(r, now)) for r in data.resources if filters.matches(r, now)]
        return render(request, "catalog.html", me=me, catalog=data, found=found, filters=filters,
                      choices=choices(data), shareable=shareable())  # fmt: skip

    @router.get("/resources/{code}")
    def resource_page(request: Request, me: Me, code: str):
        resource = catalog.find(code)
        if resource is None:
            raise PortalError(404, f"目录中没有资源 {code}", f"no resource {code} in the catalog")
        grants = [g for g in active_grants(store, me.account.id) if g.table == resource.table]
        samples = [sample_rows(me.account.name, g, pool_directory) for g in grants]
        codes = {r.code for r in catalog.load().resources}
        return render(request, "resource.html", me=me, r=resource, samples=samples,
                      freshness=freshness(resource, utcnow()), can_apply=code in shareable(),
                      known_codes=codes)  # fmt: skip

    # --- applying -------------------------------------------------------------------------------------------
    def application_form(request, me, resource, status=200, error=None, form: Form | None = None):
        return render(request, "apply.html", status, me=me, resource=resource, error=error,
                      form=form or Form({}), default_end=(utcnow().date() + timedelta(days=90)).isoformat())  # fmt: skip

    def shareable_resource(me: TokenOwner, code: str):
        role_in(me, ("consumer",), "只有数据使用方可以申请", "only consumer accounts apply")
        resource = shareable().get(code)
        if resource is None:
            raise PortalError(404, f"资源 {code} 不可申请（仅开放与有条件的共享数据池资源）",
                              f"{code} cannot be applied for (published pool resources only)")  # fmt: skip
        return resource

    @router.get("/apply/{code}")
    def apply_page(request: Request, me: Me, code: str):
        return application_form(request, me, shareable_resource(me, code))

    @router.post("/apply/{code}")
    def apply(request: Request, me: Me, form: Posted, code: str):
        resource = shareable_resource(me, code)
        row_column = form.get("row_column") or None
        row_values = _split(form.get("row_values"))
        try:
            application = apps.apply(
                store, config, me.account, resource,
                purpose=form.get("purpose"), columns=form.all("columns"),
                period_end=_date(form.get("until"), "until"), delivery=form.get("delivery", "api"),
                row_filter_column=row_column if row_values else None,
                row_filter_values=row_values if row_column and row_values else None,
                on_platform=form.get("not_on_platform") != "yes",
            )  # fmt: skip
        except apps.ApplicationError as error:
            return application_form(request, me, resource, 400, str(error), form)
        return see_other(f"{PREFIX}/mine?applied={application.id}")

    # --- deciding -------------------------------------------------------------------------------------------
    def inbox(request: Request, me: TokenOwner, status: int = 200, error: str | None = None):
        role_in(me, DECIDERS, "只有审核人和数据主管部门可以审批", "only approvers and the data office decide")
        office = me.account.role == "data_office"
        department = None if office else me.account.department
        pending = [
            a for a in apps.list_applications(store, department=department) if a.status in apps.PENDING
        ]
        decided = [
            a for a in apps.list_applications(store, department=department) if a.status in apps.DECIDED
        ]
        return render(request, "inbox.html", status, me=me, pending=pending, decided=decided[-20:], error=error,
                      office=office, may_decide=lambda a: _may_decide(me, a), names=names(),
                      resource_names=resource_names(), today=utcnow().date())  # fmt: skip

    @router.get("/inbox")
    def inbox_page(request: Request, me: Me):
        return inbox(request, me)

    @router.post("/applications/{application_id}/decide")
    def decide(request: Request, me: Me, form: Posted, application_id: int):
        role_in(me, DECIDERS, "只有审核人和数据主管部门可以审批", "only approvers and the data office decide")
        decision = form.get("decision")
        try:
            narrowing = {}
            if decision == "narrow":
                application = apps.get_application(store, application_id)
                values = _split(form.get("row_values"))
                narrowing = {
                    "columns": form.all("columns") or None,
                    "row_filter_column": form.get("row_column") or None,
                    "row_filter_values": values if values and tuple(values) != application.row_filter_values else None,
                    "period_end": _date(form.get("until"), "until") if form.get("until") else None,
                }  # fmt: skip
            apps.decide(
                store, me.account, application_id, decision, reason=form.get("reason") or None, **narrowing
            )
        except apps.ApplicationError as error:
            return inbox(request, me, 400, f"申请 {application_id}: {error}")
        return see_other(f"{PREFIX}/inbox")

    @router.post("/applications/{application_id}/forward")
    def forward(request: Request, me: Me, _form: Posted, application_id: int):
        try:
            apps.forward(store, config, me.account, application_id)
        except apps.ApplicationError as error:
            return inbox(request, me, 400, f"申请 {application_id}: {error}")
        return see_other(f"{PREFIX}/inbox")

    @router.post("/applications/{application_id}/escalate")
    def escalate(request: Request, me: Me, form: Posted, application_id: int):
        try:
            apps.escalate(store, me.account, application_id, form.get("reason"))
        except apps.ApplicationError as error:
            return inbox(request, me, 400, f"申请 {application_id}: {error}")
        return see_other(f"{PREFIX}/inbox")

    # --- my grants and tokens --------------------------------------------------------------------------------
    def mine(request: Request, me: TokenOwner, status=200, new_token=None, error=None):
        now = utcnow()
        my_apps = apps.list_applications(store, consumer_id=me.account.id)
        return render(request, "mine.html", status, me=me, applications=my_apps,
                      grants=[(g, g.active(now)) for g in list_grants(store, me.account.id)],
                      tokens=list_tokens(store, me.account), new_token=new_token, error=error,
                      applied=request.query_params.get("applied"), resource_names=resource_names(),
                      token_days=TOKEN_DAYS_DEFAULT)  # fmt: skip

    @router.get("/mine")
    def mine_page(request: Request, me: Me):
        return mine(request, me)

    @router.post("/tokens")
    def new_token(request: Request, me: Me, form: Posted):
        label = form.get("label")[:200]
        try:
            days = int(form.get("expires_days") or TOKEN_DAYS_DEFAULT)
        except ValueError:
            days = 0
        if not label or not 1 <= days <= TOKEN_DAYS_MAX:
            return mine(request, me, 400, error=f"令牌需要用途说明，有效期 1–{TOKEN_DAYS_MAX} 天 / a token needs a "
                        f"label and 1–{TOKEN_DAYS_MAX} days")  # fmt: skip
        application_id = form.get("application") or None
        if application_id is not None:
            mine_ids = {str(a.id) for a in apps.list_applications(store, consumer_id=me.account.id)}
            if application_id not in mine_ids:
                raise PortalError(
                    403, "只能绑定自己的申请", "a token can be bound to your own applications only"
                )
        issued = issue_token(store, me.account, label, expires_at=utcnow() + timedelta(days=days),
                             application_id=int(application_id) if application_id else None,
                             by=me.account.name)  # fmt: skip
        return mine(request, me, 201, new_token=issued)

    @router.post("/tokens/{token_id}/revoke")
    def revoke(request: Request, me: Me, _form: Posted, token_id: int):
        if token_id not in {t["id"] for t in list_tokens(store, me.account)}:
            raise PortalError(404, f"没有您的令牌 {token_id}", f"no token {token_id} of yours")
        with contextlib.suppress(TokenInvalid):  # revoked already: the result the person asked for
            revoke_token(store, token_id, by=me.account.name)
        if token_id == me.token_id:
            return see_other(f"{PREFIX}/login")
        return see_other(f"{PREFIX}/mine")

    # --- the data office's overview -------------------------------------------------------------------------
    @router.get("/office")
    def office(request: Request, me: Me):
        role_in(
            me,
            OVERSEERS,
            "只有数据主管部门和审计员可以查看概览",
            "only the data office and auditors see the overview",
        )
        now = utcnow()
        everything = apps.list_applications(store)
        soon = now + timedelta(days=EXPIRY_WARNING_DAYS)
        expiring = [g for g in list_grants(store, include_ended=False) if g.ends_at <= soon]
        return render(request, "office.html", me=me, counts=Counter(a.status for a in everything),
                      pending=[a for a in everything if a.status in apps.PENDING], expiring=expiring,
                      overdue=apps.overdue(store, now.date()), today=now.date(), names=names(),
                      resource_names=resource_names(), warning_days=EXPIRY_WARNING_DAYS)  # fmt: skip

    return router


def _may_decide(me: TokenOwner, application) -> bool:
    """Whether the inbox offers the decision form (the library checks again when the form is sent)."""
    if me.account.role == "data_office":
        return True
    return (
        me.account.role == "provider_approver"
        and me.account.department == application.provider_department
        and application.status != "escalated"
        and (application.tier == "open" or application.status == "forwarded")
    )


def _split(text: str) -> list[str]:
    return [v.strip() for v in text.replace("，", ",").split(",") if v.strip()]


def _date(text: str, field: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise apps.ApplicationError(f"{field}: give a date as YYYY-MM-DD, not {text!r}") from None


def login_redirect(next_path: str) -> RedirectResponse:
    return RedirectResponse(f"{PREFIX}/login?next={quote(next_path, safe='')}", status_code=303)


def error_page(templates: Jinja2Templates, request: Request, status: int, zh: str, en: str) -> Response:
    response = templates.TemplateResponse(
        request,
        "error.html",
        {"me": None, "csrf": "", "zh": zh, "en": en, "status": status},
        status_code=status,
    )
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response
