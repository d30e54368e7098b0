"""catalog/sharing.yaml: the statutory clocks, the working calendar they count in, and the API's limits.

Configuration, not code, because the clocks are set by regulation and the holidays by each year's State
Council notice; a mistake in the file is reported by its place and nothing starts.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError

from citybrain import settings


class SharingConfigError(ValueError):
    """catalog/sharing.yaml is missing or invalid."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Clocks(_Strict):
    open_answer: PositiveInt = 2
    conditional_review: PositiveInt = 2
    provider_reply: PositiveInt = 5
    provider_reply_not_on_platform: PositiveInt = 10


class Limits(_Strict):
    requests_per_minute: PositiveInt = 120
    max_result_rows: PositiveInt = 10_000
    max_export_rows: PositiveInt = 200_000
    max_page_size: PositiveInt = 1_000
    login_failures: PositiveInt = 5
    login_lockout_seconds: PositiveInt = 900


class Delivery(_Strict):
    """Table delivery (citybrain/sharing/delivery.py): how often a failing consumer database is tried."""

    attempts: PositiveInt = 3  # tries per grant and night, the first included
    backoff_seconds: float = Field(default=2.0, ge=0)  # before try n+1: backoff_seconds * 2**(n-1)
    batch_rows: PositiveInt = 5_000  # rows per INSERT round trip (all in one transaction)


class SharingConfig(_Strict):
    clocks: Clocks = Field(default_factory=Clocks)
    holidays: list[date] = Field(default_factory=list)
    workdays: list[date] = Field(default_factory=list)  # weekend days worked (调休)
    limits: Limits = Field(default_factory=Limits)
    delivery: Delivery = Field(default_factory=Delivery)


def load_config(path: Path | None = None) -> SharingConfig:
    path = Path(path) if path else settings.sharing_config_path()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as error:
        raise SharingConfigError(f"sharing configuration not found: {path}") from error
    except yaml.YAMLError as error:
        raise SharingConfigError(f"{path}: not valid YAML: {error}") from error
    try:
        return SharingConfig.model_validate(raw)
    except ValidationError as error:
        lines = [f"  {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()]
        raise SharingConfigError(f"{path}: invalid sharing configuration\n" + "\n".join(lines)) from None
