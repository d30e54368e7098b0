"""Portal sessions and protection against cross-site requests.

A session is a sharing token (``tokens.issue_token``, label ``portal session``, valid ``SESSION_HOURS``) kept
in an HttpOnly, SameSite=Lax cookie: logging out revokes it, expiry and revocation work as for any token, and
the viewer is resolved exactly as the API resolves a bearer. Page scripts cannot read the cookie (there are
no scripts, and HttpOnly keeps it so).

Every POST form carries a CSRF token, checked on the server before anything else: the SHA-256 of the
session secret (or, before login, of a random pre-session cookie) with a purpose prefix. Another site can
make the browser send the cookie (a top-level POST; SameSite=Lax already stops most of it) but cannot read
it, so it cannot compute the form value. The login form is protected the same way, so a victim cannot be
logged into someone else's account.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
from datetime import timedelta

from fastapi import Request
from fastapi.responses import Response

from citybrain.sharing.accounts import Account
from citybrain.sharing.store import Store, utcnow
from citybrain.sharing.tokens import TokenInvalid, TokenOwner, issue_token, resolve_token, revoke_token

SESSION_COOKIE = "cbl_portal_session"
PRE_SESSION_COOKIE = "cbl_portal_pre"
SESSION_LABEL = "portal session"
SESSION_HOURS = 8
COOKIE_PATH = "/portal"
CSRF_FIELD = "csrf_token"


class CsrfRefused(PermissionError):
    """A POST without the right CSRF token (a cross-site request, or a stale page)."""


def start_session(store: Store, account: Account, response: Response, request: Request) -> None:
    issued = issue_token(
        store, account, SESSION_LABEL, expires_at=utcnow() + timedelta(hours=SESSION_HOURS), by=account.name
    )
    _set_cookie(response, request, SESSION_COOKIE, issued.secret, SESSION_HOURS * 3600)
    response.delete_cookie(PRE_SESSION_COOKIE, path=COOKIE_PATH)


def end_session(store: Store, request: Request, response: Response) -> None:
    owner = viewer(store, request)
    if owner is not None:
        with contextlib.suppress(TokenInvalid):  # revoked meanwhile: the session is over either way
            revoke_token(store, owner.token_id, by=owner.account.name)
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)


def viewer(store: Store, request: Request) -> TokenOwner | None:
    """Who holds the session cookie, or None (no cookie, or an expired, revoked or unknown one)."""
    secret = request.cookies.get(SESSION_COOKIE)
    if not secret:
        return None
    try:
        return resolve_token(store, secret)
    except TokenInvalid:
        return None


def ensure_pre_session(request: Request) -> None:
    """Give an anonymous browser a random cookie (sent with the next response, ``remember_pre_session``):
    what the login form's CSRF token binds to."""
    if not request.cookies.get(SESSION_COOKIE) and not request.cookies.get(PRE_SESSION_COOKIE):
        request.state.pre_session = secrets.token_urlsafe(24)


def remember_pre_session(request: Request, response: Response) -> None:
    value = getattr(request.state, "pre_session", None)
    if value:
        _set_cookie(response, request, PRE_SESSION_COOKIE, value, 3600)


def csrf_token(request: Request) -> str:
    """The form value for this browser: bound to its session (or pre-session) cookie."""
    basis = (
        request.cookies.get(SESSION_COOKIE)
        or request.cookies.get(PRE_SESSION_COOKIE)
        or getattr(request.state, "pre_session", None)
    )
    if not basis:
        return ""
    return hashlib.sha256(f"citybrain-portal-csrf:{basis}".encode()).hexdigest()


def check_csrf(request: Request, submitted: str | None) -> None:
    expected = csrf_token(request)
    if not expected or not submitted or not hmac.compare_digest(expected, submitted):
        raise CsrfRefused("the form's security token is missing or wrong: reload the page and try again")


def _set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
