"""People's accounts: a name, a department, one role, an argon2 password hash, and login throttling.

Passwords are chosen by people, so they are hashed with argon2id (memory-hard, salted: a stolen table does
not give them away cheaply). After ``login_failures`` wrong passwords in a row the account is locked for
``login_lockout_seconds``; during the lock even the right password is refused, so guessing stays slow
whatever the attacker's speed. Every login and account change is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select, update

from citybrain.access import audit
from citybrain.sharing.config import Limits
from citybrain.sharing.store import ROLES, Store, utcnow

MIN_PASSWORD_LENGTH = 10
_hasher = PasswordHasher()


class AccountError(ValueError):
    """Bad input for an account (unknown role, short password, duplicate name)."""


class LoginFailed(PermissionError):
    """Wrong name or password, or a locked account: the message never says which of name/password."""


@dataclass(frozen=True)
class Account:
    id: int
    name: str
    department: str
    role: str

    @classmethod
    def from_row(cls, row) -> Account:
        return cls(id=row.id, name=row.name, department=row.department, role=row.role)


def create_account(
    store: Store, name: str, department: str, role: str, password: str, *, by: str = "operator"
) -> Account:
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}: roles are {', '.join(ROLES)}")
    if not name.strip() or not department.strip():
        raise AccountError("an account needs a name and a department")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password shorter than {MIN_PASSWORD_LENGTH} characters")
    with store.engine.begin() as con:
        if con.execute(select(store.accounts.c.id).where(store.accounts.c.name == name)).first():
            raise AccountError(f"an account named {name!r} exists already")
        account_id = con.execute(
            store.accounts.insert().values(
                name=name,
                department=department,
                role=role,
                password_hash=_hasher.hash(password),
                failed_logins=0,
                disabled=False,
                created_at=utcnow(),
            )
        ).inserted_primary_key[0]
    audit.append(
        "account", outcome="ok", user=by, via="sharing", detail=f"created {name} ({role}, {department})"
    )
    return Account(account_id, name, department, role)


def get_account(store: Store, account_id: int | None = None, name: str | None = None) -> Account:
    column, value = (
        (store.accounts.c.id, account_id) if account_id is not None else (store.accounts.c.name, name)
    )
    with store.engine.connect() as con:
        row = con.execute(select(store.accounts).where(column == value)).first()
    if row is None:
        raise AccountError(f"no account {value!r}")
    return Account.from_row(row)


def list_accounts(store: Store) -> list[Account]:
    with store.engine.connect() as con:
        rows = con.execute(select(store.accounts).order_by(store.accounts.c.id)).all()
    return [Account.from_row(r) for r in rows]


def authenticate(store: Store, name: str, password: str, limits: Limits, *, via: str = "sharing") -> Account:
    """The account if ``password`` is right and the account is neither locked nor disabled."""
    now = utcnow()
    accounts = store.accounts
    with store.engine.begin() as con:
        row = con.execute(select(accounts).where(accounts.c.name == name)).first()
        if row is None:
            _hasher.hash(password)  # spend the same time as a real check: no account-name oracle by timing
            _denied(name, "no such account", via)
        if row.disabled:
            _denied(name, "account disabled", via)
        if row.locked_until is not None and row.locked_until > now:
            _denied(name, f"locked until {row.locked_until.isoformat()}Z after repeated failures", via)
        if _verify(row.password_hash, password):
            con.execute(
                update(accounts).where(accounts.c.id == row.id).values(failed_logins=0, locked_until=None)
            )
            audit.append("login", outcome="ok", user=name, via=via)
            return Account.from_row(row)
        failures = (row.failed_logins or 0) + 1
        locked_until = None
        if failures >= limits.login_failures:
            locked_until = now + timedelta(seconds=limits.login_lockout_seconds)
            failures = 0
        con.execute(
            update(accounts)
            .where(accounts.c.id == row.id)
            .values(failed_logins=failures, locked_until=locked_until)
        )
    _denied(
        name, "wrong password" + (f"; locked until {locked_until.isoformat()}Z" if locked_until else ""), via
    )


def locked_until(store: Store, name: str) -> datetime | None:
    with store.engine.connect() as con:
        return con.execute(
            select(store.accounts.c.locked_until).where(store.accounts.c.name == name)
        ).scalar_one_or_none()


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _denied(name: str, why: str, via: str):
    audit.append("login", outcome="denied", user=name, via=via, detail=why)
    raise LoginFailed("wrong name or password, or the account is locked; try again later")
