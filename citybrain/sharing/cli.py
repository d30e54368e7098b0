"""``citybrain sharing ...``: accounts, tokens, applications, decisions, grants and the API server.

Two kinds of caller. Workflow steps (apply, review, decide, escalate, my grants) act as the account whose
token is given (``--token`` or ``$CITYBRAIN_SHARING_TOKEN``): a name on the command line is no identity.
Administration (init, account create, token issue/revoke for others, grant revoke, serve, overdue) is the
*local operator mode*: whoever can reach the service's database on this machine, audited as
``operator:<OS login>``.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from datetime import date, timedelta

from citybrain.access.identity import TOKEN_ENV, operator_identity


def _operator() -> str:
    """The local operator, named by the OS account running the command (not by a flag or variable)."""
    return operator_identity()


def _store():
    from citybrain.sharing.store import open_store

    return open_store()


def _actor(store, args):
    from citybrain.sharing.tokens import resolve_token

    secret = args.token or os.environ.get(TOKEN_ENV)
    if not secret:
        raise PermissionError(f"give your token: --token or ${TOKEN_ENV}")
    return resolve_token(store, secret).account


def _rows(spec: str | None):
    if not spec:
        return None, None
    column, sep, values = spec.partition("=")
    if not sep or not values:
        raise ValueError(f"--rows {spec!r}: write column=value1,value2")
    return column.strip(), [v.strip() for v in values.split(",") if v.strip()]


def _columns(spec: str | None):
    return [c.strip() for c in spec.split(",") if c.strip()] if spec else None


def _show(application) -> None:
    row_filter = (
        f"{application.row_filter_column} in {','.join(application.row_filter_values)}"
        if application.row_filter_column
        else "all rows"
    )
    print(
        f"#{application.id} {application.status:<9} {application.resource_code} ({application.table}, "
        f"{application.tier}) columns={','.join(application.columns)} rows={row_filter} "
        f"until={application.period_end} delivery={application.delivery} due={application.due_on or '-'}"
        + (f" grant={application.grant_id}" if application.grant_id else "")
        + (f" reason={application.reason}" if application.reason else "")
    )


def cmd(args: argparse.Namespace) -> int:
    from citybrain.access.sql_guard import QueryRejected
    from citybrain.sharing import accounts, applications, config, grants, resources, tokens

    try:
        return HANDLERS[args.sharing_command](args, accounts, applications, config, grants, resources, tokens)
    except (
        accounts.AccountError,
        accounts.LoginFailed,
        applications.ApplicationError,
        config.SharingConfigError,
        grants.GrantError,
        resources.UnknownResource,
        tokens.TokenInvalid,
        QueryRejected,
        PermissionError,
        ValueError,
    ) as error:
        print(f"citybrain sharing: {type(error).__name__}: {error}", file=sys.stderr)
        return 2


def _init(args, *modules) -> int:
    store = _store()
    print(f"sharing database ready: {store.engine.url.render_as_string(hide_password=True)}")
    return 0


def _account(args, accounts, *rest) -> int:
    store = _store()
    if args.account_command == "list":
        for a in accounts.list_accounts(store):
            print(f"{a.id:>4} {a.name:<20} {a.role:<18} {a.department}")
        return 0
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass("password: ")
    account = accounts.create_account(store, args.name, args.department, args.role, password, by=_operator())
    print(f"account {account.id} {account.name} ({account.role}, {account.department}) created")
    return 0


def _token(args, accounts, applications, config, grants, resources, tokens) -> int:
    store = _store()
    if args.token_command == "revoke":
        tokens.revoke_token(store, args.id, by=_operator())
        print(f"token {args.id} revoked")
        return 0
    if args.token_command == "list":
        for t in tokens.list_tokens(store):
            state = "revoked" if t["revoked_at"] else f"expires {t['expires_at'] or 'never'}"
            print(f"{t['id']:>4} account={t['account_id']} {t['prefix']}… {t['label']!r} {state}")
        return 0
    from citybrain.sharing.store import utcnow

    account = accounts.get_account(store, name=args.account)
    expires = utcnow() + timedelta(days=args.expires_days) if args.expires_days else None
    issued = tokens.issue_token(
        store, account, args.label, expires_at=expires, application_id=args.application, by=_operator()
    )
    print(f"token {issued.id} for {account.name} (shown once, keep it secret):", file=sys.stderr)
    print(issued.secret)
    return 0


def _apply(args, accounts, applications, config, grants, resources, tokens) -> int:
    store = _store()
    consumer = _actor(store, args)
    column, values = _rows(args.rows)
    application = applications.apply(
        store,
        config.load_config(),
        consumer,
        resources.find_resource(args.resource),
        purpose=args.purpose,
        columns=_columns(args.columns) or [],
        period_end=date.fromisoformat(args.until),
        delivery=args.delivery,
        row_filter_column=column,
        row_filter_values=values,
        on_platform=not args.not_on_platform,
    )
    _show(application)
    return 0


def _review(args, accounts, applications, config, *rest) -> int:
    store = _store()
    _show(applications.forward(store, config.load_config(), _actor(store, args), args.id))
    return 0


def _escalate(args, accounts, applications, *rest) -> int:
    store = _store()
    _show(applications.escalate(store, _actor(store, args), args.id, args.reason))
    return 0


def _decide(args, accounts, applications, *rest) -> int:
    store = _store()
    column, values = _rows(args.rows)
    application = applications.decide(
        store,
        _actor(store, args),
        args.id,
        args.decision,
        reason=args.reason,
        columns=_columns(args.columns),
        row_filter_column=column,
        row_filter_values=values,
        period_end=date.fromisoformat(args.until) if args.until else None,
    )
    _show(application)
    return 0


def _list(args, accounts, applications, *rest) -> int:
    store = _store()
    found = (
        applications.overdue(store)
        if args.overdue
        else applications.list_applications(store, status=args.status)
    )
    for application in found:
        _show(application)
    return 0


def _grants(args, accounts, applications, config, grants, *rest) -> int:
    store = _store()
    if args.revoke:
        grants.revoke_grant(store, args.revoke, by=_operator())
        print(f"grant {args.revoke} revoked")
        return 0
    for grant in grants.list_grants(store):
        print(json.dumps({**grant.describe(), "active": grant.active()}, ensure_ascii=False))
    return 0


def _serve(args, accounts, applications, config, *rest) -> int:
    from citybrain.sharing.api import serve

    serve(_store(), config.load_config(), host=args.host, port=args.port)
    return 0


HANDLERS = {
    "init": _init,
    "account": _account,
    "token": _token,
    "apply": _apply,
    "review": _review,
    "escalate": _escalate,
    "decide": _decide,
    "list": _list,
    "grants": _grants,
    "serve": _serve,
}


def add_commands(sub) -> None:
    p = sub.add_parser("sharing", help="the sharing service: accounts, tokens, applications, grants, API")
    s = p.add_subparsers(dest="sharing_command", required=True)
    p.set_defaults(func=cmd)

    s.add_parser("init", help="create the service's tables (operator)")

    a = s.add_parser("account", help="create or list accounts (operator)")
    a_sub = a.add_subparsers(dest="account_command", required=True)
    c = a_sub.add_parser("create")
    c.add_argument("--name", required=True)
    c.add_argument("--department", required=True, help="department code, e.g. the resource's provider code")
    c.add_argument(
        "--role", required=True, choices=["consumer", "provider_approver", "data_office", "auditor"]
    )
    c.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    a_sub.add_parser("list")

    t = s.add_parser("token", help="issue, revoke or list API tokens (operator)")
    t_sub = t.add_subparsers(dest="token_command", required=True)
    i = t_sub.add_parser("issue")
    i.add_argument("--account", required=True)
    i.add_argument("--label", required=True, help="the client application the token is for")
    i.add_argument("--expires-days", type=int)
    i.add_argument("--application", type=int, help="serve only this sharing application's grants")
    r = t_sub.add_parser("revoke")
    r.add_argument("id", type=int)
    t_sub.add_parser("list")

    for name, help_text in (
        ("apply", "apply for a catalog resource (consumer)"),
        ("review", "forward a conditional application to its provider (data office)"),
        ("escalate", "take an application over (data office)"),
        ("decide", "approve, narrow or refuse an application (provider approver or data office)"),
    ):
        w = s.add_parser(name, help=help_text)
        w.add_argument("--token", help=f"your token (default ${TOKEN_ENV})")
        if name == "apply":
            w.add_argument("--resource", required=True, help="resource code (资源代码)")
            w.add_argument("--purpose", required=True)
            w.add_argument("--columns", required=True, help="comma-separated")
            w.add_argument("--rows", help="column=value1,value2 (e.g. district codes)")
            w.add_argument("--until", required=True, help="last day of the period (YYYY-MM-DD)")
            w.add_argument("--delivery", choices=["api", "table"], default="api")
            w.add_argument(
                "--not-on-platform", action="store_true", help="the data is not on the platform yet"
            )
        else:
            w.add_argument("id", type=int)
        if name == "escalate":
            w.add_argument("--reason", required=True)
        if name == "decide":
            w.add_argument("decision", choices=["approve", "narrow", "refuse"])
            w.add_argument("--reason")
            w.add_argument("--columns", help="narrow: the columns granted")
            w.add_argument("--rows", help="narrow: column=values granted")
            w.add_argument("--until", help="narrow: an earlier last day")

    ls = s.add_parser("list", help="applications (all, by status, or overdue)")
    ls.add_argument("--status")
    ls.add_argument("--overdue", action="store_true")

    g = s.add_parser("grants", help="list grants, or revoke one (operator)")
    g.add_argument("--revoke", type=int, metavar="GRANT_ID")

    v = s.add_parser("serve", help="serve the HTTP API (OpenAPI docs at /docs)")
    v.add_argument("--host", default="127.0.0.1")
    v.add_argument("--port", type=int, default=8780)

    from citybrain.sharing.delivery_cli import add_commands as add_delivery_commands

    add_delivery_commands(s)  # table delivery (库表): citybrain/sharing/delivery_cli.py
