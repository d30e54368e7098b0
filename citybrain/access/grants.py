"""Who may read which published tier: ``catalog/grants.yaml``, validated with pydantic.

Users get roles, roles get tiers (``open``, ``conditional``) and possibly the audit permission. The file
is plain YAML so a data engineer can review a grant in a pull request; a mistake (an unknown role, a tier
that does not exist, ``restricted``) is reported by its place in the file and nothing is granted.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from citybrain import settings
from citybrain.pool_layout import PUBLISHED_TIERS

Tier = Literal["open", "conditional"]


class GrantsError(ValueError):
    """The grants file is missing or invalid."""


class AccessDenied(PermissionError):
    """A user asked for a tier (or the audit log) the grants file does not give them."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Role(_Strict):
    description: str = ""
    tiers: list[Tier] = Field(default_factory=list)
    audit: bool = False  # may read the audit log (`citybrain audit query`)

    @field_validator("tiers", mode="before")
    @classmethod
    def _no_restricted(cls, value):
        if isinstance(value, list) and "restricted" in value:
            raise ValueError("'restricted' cannot be granted: restricted data is never published")
        return value


class User(_Strict):
    description: str = ""
    roles: list[str] = Field(default_factory=list)


class Grants(_Strict):
    roles: dict[str, Role]
    users: dict[str, User]
    source: str = Field(default="", exclude=True)

    @model_validator(mode="after")
    def _roles_exist(self):
        for name, user in self.users.items():
            unknown = [r for r in user.roles if r not in self.roles]
            if unknown:
                raise ValueError(
                    f"user {name!r} has unknown role(s) {', '.join(unknown)} (defined: {', '.join(self.roles)})"
                )
        return self

    def tiers_for(self, user: str) -> list[str]:
        granted = {t for role in self._roles_of(user) for t in role.tiers}
        return [t for t in PUBLISHED_TIERS if t in granted]

    def is_auditor(self, user: str) -> bool:
        return any(role.audit for role in self._roles_of(user))

    def _roles_of(self, user: str) -> list[Role]:
        entry = self.users.get(user)
        return [self.roles[r] for r in entry.roles] if entry else []

    def require_tiers(self, user: str, requested: list[str] | None) -> list[str]:
        """The tiers a session of ``user`` opens: all granted ones, or ``requested`` if every one is granted."""
        granted = self.tiers_for(user)
        for tier in requested or []:
            if tier not in (*PUBLISHED_TIERS, "restricted"):
                raise AccessDenied(f"unknown tier {tier!r}: published tiers are {', '.join(PUBLISHED_TIERS)}")
            if tier not in granted:
                raise AccessDenied(
                    f"user {user!r} is not granted tier {tier!r} "
                    f"(granted: {', '.join(granted) or 'none'}; grants file: {self.source})"
                    + (" — restricted data never leaves the warehouse" if tier == "restricted" else "")
                )
        if not granted:
            raise AccessDenied(
                f"user {user!r} is granted no tier in {self.source}"
                + ("" if user in self.users else " (not listed there)")
                + "; ask a data engineer to add a grant"
            )
        return list(requested) if requested else granted

    def require_auditor(self, user: str) -> None:
        if not self.is_auditor(user):
            raise AccessDenied(
                f"user {user!r} may not read the audit log: no role with `audit: true` in {self.source}"
            )


def grants_path() -> Path:
    """``CITYBRAIN_GRANTS``, else the lake's own ``grants.yaml``, else the shipped ``catalog/grants.yaml``."""
    explicit = os.environ.get("CITYBRAIN_GRANTS")
    if explicit:
        return Path(explicit).resolve()
    lake = settings.home() / "grants.yaml"
    return lake if lake.exists() else settings.REPO_ROOT / "catalog" / "grants.yaml"


def load_grants(path: Path | None = None) -> Grants:
    path = Path(path) if path else grants_path()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise GrantsError(f"grants file not found: {path}") from error
    except yaml.YAMLError as error:
        raise GrantsError(f"{path}: not valid YAML: {error}") from error
    try:
        grants = Grants.model_validate(raw if isinstance(raw, dict) else {"roles": raw})
    except ValidationError as error:
        lines = [
            f"  {'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}" for e in error.errors()
        ]
        raise GrantsError(f"{path}: invalid grants\n" + "\n".join(lines)) from None
    return grants.model_copy(update={"source": str(path)})
