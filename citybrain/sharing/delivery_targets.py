"""Where table delivery (库表) pushes a grant's slice: a consumer database, by grant or by department.

A target is a SQLAlchemy URL (PostgreSQL or MySQL/MariaDB) and an optional schema. It is set for one grant
or as the default of a consumer department (the grant's account's department); a grant's own target wins.
The sharing database never holds a password: the URL is stored without one, and ``password_env`` names the
environment variable that holds it on the machine that runs the deliveries (the Dagster code location), so
the secret stays in the deployment's secret store and never reaches the audit log, a delivery record or a
log line (those show the URL with the password hidden).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from sqlalchemy import Engine, create_engine, delete, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from citybrain.access import audit
from citybrain.sharing.grants import Grant
from citybrain.sharing.store import Store, utcnow

DIALECTS = ("postgresql", "mysql", "mariadb")


class TargetError(ValueError):
    """A target that cannot be stored or used: no target, a password in the URL, an unset variable."""


@dataclass(frozen=True)
class Target:
    id: int
    url: str  # without password
    password_env: str | None
    schema: str | None

    def shown(self) -> str:
        """The URL as logs and audit records show it (a password, should one be there, hidden)."""
        return make_url(self.url).render_as_string(hide_password=True)

    def engine(self) -> Engine:
        """An engine with the password from ``password_env``. ``hide_parameters``: a failed statement's
        error carries no row values (they may be personal data) into logs or the delivery record."""
        url = make_url(self.url)
        if self.password_env:
            password = os.environ.get(self.password_env)
            if password is None:
                raise TargetError(
                    f"the environment variable {self.password_env} (password of delivery target "
                    f"{self.id}, {self.shown()}) is not set"
                )
            url = url.set(password=password)
        return create_engine(url, hide_parameters=True, pool_pre_ping=True)


def check_url(url: str) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise TargetError(f"not a SQLAlchemy URL: {error}") from None
    if parsed.get_backend_name() not in DIALECTS:
        raise TargetError(
            f"table delivery goes to PostgreSQL or MySQL/MariaDB, not {parsed.get_backend_name()!r}"
        )
    if parsed.password:
        raise TargetError(
            "do not store a password in the URL: put it in an environment variable of the delivering "
            "machine and name that variable (password_env)"
        )
    return parsed


def set_target(
    store: Store,
    *,
    url: str,
    by: str,
    grant_id: int | None = None,
    department: str | None = None,
    password_env: str | None = None,
    schema: str | None = None,
) -> int:
    """Store (or replace) the target of one grant or of one department; audited. Returns its id."""
    if (grant_id is None) == (department is None):
        raise TargetError("a delivery target is for one grant or for one department (exactly one of them)")
    check_url(url)
    t = store.delivery_targets
    key = t.c.grant_id == grant_id if grant_id is not None else t.c.department == department
    with store.engine.begin() as con:
        con.execute(delete(t).where(key))
        target_id = con.execute(
            t.insert().values(
                grant_id=grant_id,
                department=department,
                url=url,
                password_env=password_env,
                target_schema=schema,
                created_at=utcnow(),
            )
        ).inserted_primary_key[0]
    shown = make_url(url).render_as_string(hide_password=True)
    audit.append(
        "grant",
        outcome="ok",
        user=by,
        via="sharing",
        grant_id=grant_id,
        detail=f"table delivery target {target_id} for "
        + (f"grant {grant_id}" if grant_id is not None else f"department {department}")
        + f": {shown}"
        + (f" schema {schema}" if schema else "")
        + (f", password from ${password_env}" if password_env else ""),
    )
    return target_id


def target_for(store: Store, grant: Grant, department: str) -> Target:
    """The grant's own target, else its consumer department's; ``TargetError`` when there is none."""
    t = store.delivery_targets
    with store.engine.connect() as con:
        row = (
            con.execute(select(t).where(t.c.grant_id == grant.id)).first()
            or con.execute(select(t).where(t.c.department == department)).first()
        )
    if row is None:
        raise TargetError(
            f"grant {grant.id} has table delivery but no target: set one for the grant or for department "
            f"{department}"
        )
    return Target(id=row.id, url=row.url, password_env=row.password_env, schema=row.target_schema)
