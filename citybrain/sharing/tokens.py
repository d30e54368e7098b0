"""API tokens: a random secret shown once, kept only as its SHA-256, revocable, optionally expiring.

Why SHA-256 and not argon2 as for passwords: a token is 32 random bytes (256 bits) from ``secrets``, so
there is nothing to guess and no dictionary to try; a slow hash only protects low-entropy secrets. A fast
hash lets every API request find its token by an indexed lookup of the hash, and a stolen table still gives
no usable token. A token belongs to an account and, optionally, to one sharing application (then it serves
only that application's grants).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from citybrain.access import audit
from citybrain.sharing.accounts import Account
from citybrain.sharing.store import Store, utcnow

TOKEN_PREFIX = "cbl_"


class TokenInvalid(PermissionError):
    """Unknown, tampered, revoked or expired token (one message for all: nothing to learn from it)."""


@dataclass(frozen=True)
class IssuedToken:
    id: int
    secret: str  # shown once, never stored
    expires_at: datetime | None


@dataclass(frozen=True)
class TokenOwner:
    token_id: int
    account: Account
    application_id: int | None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_token(
    store: Store,
    account: Account,
    label: str,
    *,
    expires_at: datetime | None = None,
    application_id: int | None = None,
    by: str | None = None,
) -> IssuedToken:
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with store.engine.begin() as con:
        token_id = con.execute(
            store.tokens.insert().values(
                account_id=account.id,
                label=label,
                application_id=application_id,
                prefix=secret[: len(TOKEN_PREFIX) + 6],
                secret_hash=_digest(secret),
                created_at=utcnow(),
                expires_at=expires_at,
            )
        ).inserted_primary_key[0]
    audit.append(
        "token",
        outcome="ok",
        user=by or account.name,
        via="sharing",
        application_id=application_id,
        detail=f"issued token {token_id} ({label!r}) to {account.name}"
        + (f", expires {expires_at.isoformat()}Z" if expires_at else ""),
    )
    return IssuedToken(token_id, secret, expires_at)


def revoke_token(store: Store, token_id: int, *, by: str) -> None:
    if not store.revoke(store.tokens, token_id):
        raise TokenInvalid(f"no active token {token_id}")
    audit.append("token", outcome="ok", user=by, via="sharing", detail=f"revoked token {token_id}")


def resolve_token(store: Store, secret: str) -> TokenOwner:
    """Who holds ``secret``; ``TokenInvalid`` if it is unknown, revoked or expired."""
    if not secret or not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        raise TokenInvalid("invalid token")
    t, a = store.tokens, store.accounts
    with store.engine.begin() as con:
        row = con.execute(
            select(t, a.c.name, a.c.department, a.c.role, a.c.disabled)
            .join(a, a.c.id == t.c.account_id)
            .where(t.c.secret_hash == _digest(secret))
        ).first()
        now = utcnow()
        if row is None or row.revoked_at is not None or row.disabled:
            raise TokenInvalid("invalid token")
        if row.expires_at is not None and row.expires_at <= now:
            raise TokenInvalid("invalid token")
        con.execute(update(t).where(t.c.id == row.id).values(last_used_at=now))
    account = Account(row.account_id, row.name, row.department, row.role)
    return TokenOwner(row.id, account, row.application_id)


def list_tokens(store: Store, account: Account | None = None) -> list[dict]:
    t = store.tokens
    query = select(t.c.id, t.c.account_id, t.c.label, t.c.application_id, t.c.prefix, t.c.created_at,
                   t.c.expires_at, t.c.revoked_at, t.c.last_used_at).order_by(t.c.id)  # fmt: skip
    if account is not None:
        query = query.where(t.c.account_id == account.id)
    with store.engine.connect() as con:
        return [dict(r._mapping) for r in con.execute(query)]
