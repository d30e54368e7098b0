"""The source catalog (资源目录): the declarative list of feeds that ingestion is generated from.

The YAML is the interface a data engineer edits, so a mistake in it must be reported in their terms:
the feed id and the field, not a Python traceback. ``load_catalog`` raises ``CatalogError`` with one
line per problem, e.g. ``feed 'schools' (feeds[3]): delivery.encoding: unknown encoding 'utf9'``.
"""

from __future__ import annotations

import codecs
import os
import re
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from citybrain import settings
from citybrain.vocabulary import Tier

# libyaml's parser when PyYAML has it (same safe constructor and resolver, about 8x faster: the catalog
# is parsed at every definitions load).
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

IDENTIFIER = r"^[a-z][a-z0-9_]*$"
Classification = Tier  # citybrain/vocabulary.py
PiiKind = Literal[
    "none",
    "resident_id",
    "person_name",
    "phone",
    "address",
    "birth_date",
    "free_text",
    "person_or_org_id",
    "precise_location",
]
ColumnType = Literal["varchar", "integer", "bigint", "double", "decimal", "date", "timestamp", "boolean"]
FILE_KINDS = ("csv", "jsonl", "xlsx", "parquet")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Title(_Strict):
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)


class Provider(_Strict):
    name: str = Field(min_length=1)
    en: str = Field(min_length=1)

    @property
    def group_name(self) -> str:
        """Dagster group for the provider's feeds: its English name in snake case."""
        return re.sub(r"[^a-z0-9]+", "_", self.en.lower()).strip("_")


class Operator(_Strict):
    """A telecom operator (运营商) whose subscribers the pool counts: 中国移动, 中国联通, 中国电信, 中国广电 ..."""

    name: str = Field(min_length=1)
    en: str = Field(min_length=1)


# What an operator feed delivers (docs/CATALOG.md "Operator feeds"): each kind is one common shape that the
# operator models union over every declared feed of the kind, so a city with other operators adds feeds here.
OperatorFeedKind = Literal["presence", "od", "cell_sites", "market_share"]
# The spatial unit of a presence feed, i.e. how int_spatial__operator_units places it on the grid.
PresenceUnit = Literal["h3", "gcj02_point", "wgs84_point", "cell_site"]
OPERATOR_KINDS = ("presence", "od", "cell_sites")  # kinds delivered by one operator (market_share: by all)


class OperatorFeed(_Strict):
    """Which operator a telecom feed belongs to and what it delivers."""

    kind: OperatorFeedKind
    operator: str | None = None
    unit: PresenceUnit | None = None
    cell_sites: str | None = Field(default=None, pattern=IDENTIFIER)

    @model_validator(mode="after")
    def _check(self) -> OperatorFeed:
        if self.kind in OPERATOR_KINDS and not self.operator:
            raise ValueError(f"operator: a {self.kind} feed must name its operator (a key of `operators`)")
        if self.kind == "market_share" and self.operator:
            raise ValueError("operator: a market_share feed covers every operator (its `operator` column)")
        if (self.kind == "presence") != (self.unit is not None):
            raise ValueError(
                "unit: a presence feed needs its spatial unit (h3, gcj02_point, wgs84_point, cell_site)"
            )
        if (self.unit == "cell_site") != (self.cell_sites is not None):
            raise ValueError(
                "cell_sites: the cell_sites feed placing the cells of a unit: cell_site presence feed"
            )
        return self


class Connection(_Strict):
    """A department database or API. The URL is read from ``url_env`` when a run needs it."""

    kind: Literal["sql", "http"]
    url_env: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    default: str | None = None


def connection_url(url_env: str, default: str | None) -> str | None:
    """The URL a run uses for a connection: ``$url_env``, else the catalog's default (``{landing}`` in it:
    the landing zone); None when neither is set. One rule for the resources and the CLI's checks."""
    return os.environ.get(url_env) or (default.format(landing=settings.landing_dir()) if default else None)


class Column(_Strict):
    name: str = Field(pattern=IDENTIFIER)
    type: ColumnType = "varchar"
    classification: Classification
    pii: PiiKind = "none"
    description: str = Field(min_length=1)


class FileDelivery(_Strict):
    kind: Literal["csv", "jsonl", "xlsx", "parquet"]
    path: str = Field(min_length=1)
    encoding: str = "utf-8"
    compression: Literal["none", "gzip"] = "none"
    sheet: str | None = None
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    # Which of two full snapshots is the newer (docs/INGESTION.md "Deliveries over time"): `name_date`, the
    # delivery date written in the file name (20261201 or 2026-12-01); `name`, the file names in sort order.
    # Never the order of arrival: an older snapshot that arrives late must not replace a newer one.
    snapshot_order: Literal["name_date", "name"] = "name_date"

    @model_validator(mode="after")
    def _check(self) -> FileDelivery:
        try:
            codecs.lookup(self.encoding)
        except LookupError:
            raise ValueError(f"encoding: unknown encoding {self.encoding!r}") from None
        if self.path.startswith("/") or ".." in Path(self.path).parts:
            raise ValueError(f"path: {self.path!r} must be relative to the landing zone and stay inside it")
        if self.sheet and self.kind != "xlsx":
            raise ValueError("sheet: only applies to xlsx deliveries")
        return self


class SqlDelivery(_Strict):
    kind: Literal["sql"]
    connection: str
    table: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.]*$")
    cursor: str = Field(pattern=IDENTIFIER)
    batch_size: int = Field(default=50_000, gt=0)


class HttpDelivery(_Strict):
    """A paginated JSON API: GET <base><path>?date=..&page=..&page_size=..[&updated_since=..]."""

    kind: Literal["http"]
    connection: str
    path: str = Field(pattern=r"^/")
    cursor: str = Field(pattern=IDENTIFIER)
    page_size: int = Field(default=500, gt=0, le=10_000)
    max_pages: int = Field(default=10_000, gt=0)
    date_param: str = "date"
    page_param: str = "page"
    page_size_param: str = "page_size"
    since_param: str = "updated_since"
    records_field: str = "data"
    timeout_seconds: float = Field(default=30.0, gt=0)
    # Records change after delivery (a ticket closed days later): each night also re-asks the API, with each
    # day's cursor (since_param), for the changes to the days received this many days before the run.
    late_update_days: int = Field(default=0, ge=0, le=366)


Delivery = Annotated[FileDelivery | SqlDelivery | HttpDelivery, Field(discriminator="kind")]


# Hours between two deliveries of each cadence; a feed is overdue once its last delivery is older than
# this plus a quarter (the grace a department gets). Used by the freshness checks and the scorecards.
CADENCE_HOURS = {"hourly": 1, "daily": 24, "weekly": 168, "monthly": 744, "termly": 4392, "yearly": 8784}
GRACE_SHARE = 0.25


def max_age_hours(cadence: str) -> float:
    """How old the newest update of something with this cadence may be before it is overdue: the cadence plus
    ``GRACE_SHARE`` of grace (feeds, and the portal's resources by their update cycle)."""
    return CADENCE_HOURS[cadence] * (1 + GRACE_SHARE)


class Feed(_Strict):
    id: str = Field(pattern=IDENTIFIER)
    title: Title
    provider: str
    delivery: Delivery
    cadence: Literal["hourly", "daily", "weekly", "monthly", "termly", "yearly"]
    partitioning: Literal["none", "daily"]
    snapshot: Literal["full", "incremental", "append"] = "append"
    key: list[str] = Field(min_length=1)
    columns: list[Column] = Field(min_length=1)
    description: str | None = None
    # A day may bring no records (a service centre closed at the weekend): a delivery that arrived with no
    # records is a quiet day, and the tables built from it publish an empty day. Off: an empty day is a fault.
    quiet_days: bool = False
    # The department's own vocabulary of a coded column, mapped to the pool's codes: column -> {delivered value:
    # pool code}. Models join reference.vocabularies instead of spelling one department's words in SQL, so a
    # city whose health commission says 综合性医院 or whose service centre says 网办 adds a line here.
    vocabularies: dict[str, dict[str, str]] = Field(default_factory=dict)
    # A telecom feed: its operator and what it delivers. The operator models union every feed of a kind
    # (dbt var operator_feeds, macros/operator_feeds.sql) and the staging models read its operator code.
    operator_feed: OperatorFeed | None = None

    @model_validator(mode="after")
    def _check(self) -> Feed:
        names = [c.name for c in self.columns]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"columns: duplicated column names {duplicated}")
        missing = [k for k in self.key if k not in names]
        if missing:
            raise ValueError(f"key: {missing} not among the columns")
        delivery = self.delivery
        if isinstance(delivery, SqlDelivery | HttpDelivery) and delivery.cursor not in names:
            raise ValueError(f"delivery.cursor: {delivery.cursor!r} is not among the columns")
        if isinstance(delivery, FileDelivery):
            dated = "{date" in delivery.path
            if self.partitioning == "daily" and not dated:
                raise ValueError("delivery.path: a daily-partitioned file feed needs {date:...} in its path")
            if self.partitioning == "none" and dated:
                raise ValueError("delivery.path: {date} only makes sense with partitioning: daily")
            if self.snapshot == "incremental":
                raise ValueError("snapshot: 'incremental' needs a sql or http delivery with a cursor")
        elif self.snapshot == "full":
            raise ValueError("snapshot: a sql or http delivery is read incrementally; use 'incremental'")
        unknown = sorted(set(self.vocabularies) - set(names))
        if unknown:
            raise ValueError(f"vocabularies: {unknown} not among the columns")
        if self.quiet_days and self.partitioning != "daily":
            raise ValueError("quiet_days: only a daily-partitioned feed has days that can be quiet")
        if isinstance(delivery, SqlDelivery) and self.partitioning != "none":
            raise ValueError("partitioning: a sql feed is read by its cursor, not by day; use 'none'")
        if isinstance(delivery, HttpDelivery) and self.partitioning != "daily":
            raise ValueError("partitioning: an http feed is fetched per day; use 'daily'")
        if self.operator_feed and self.operator_feed.kind in ("cell_sites", "market_share"):
            needed = {"cell_sites": "cell_id", "market_share": "operator"}[self.operator_feed.kind]
            if needed not in names:
                raise ValueError(f"operator_feed: a {self.operator_feed.kind} feed needs a column {needed!r}")
        return self

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def is_partitioned(self) -> bool:
        return self.partitioning == "daily"

    @property
    def ingestion_order(self) -> int:
        """When a run ingests the feed: 0 the day's feeds, 1 database tables, 2 full snapshot files (a
        whole register each, the largest deliveries). The read-ahead worker (citybrain/ingest/read_ahead.py)
        reads from the other end, the snapshot files first, while the run's own process loads the day's
        feeds and fetches the tables: the two meet in the middle instead of one waiting for the other."""
        if isinstance(self.delivery, SqlDelivery):
            return 1
        return 2 if self.snapshot == "full" else 0

    @property
    def max_age_hours(self) -> float:
        """How old the last delivery may be before the feed is overdue (cadence plus grace)."""
        return max_age_hours(self.cadence)


class PartitionSettings(_Strict):
    start: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    timezone: str = "Asia/Shanghai"


class Catalog(_Strict):
    version: Literal[1]
    partitions: PartitionSettings
    connections: dict[str, Connection] = Field(default_factory=dict)
    providers: dict[str, Provider]
    operators: dict[str, Operator] = Field(default_factory=dict)
    feeds: list[Feed] = Field(min_length=1)

    @cached_property
    def by_id(self) -> dict[str, Feed]:
        return {f.id: f for f in self.feeds}

    def feed(self, feed_id: str) -> Feed:
        try:
            return self.by_id[feed_id]
        except KeyError:
            raise KeyError(f"unknown feed {feed_id!r}; the catalog has {sorted(self.by_id)}") from None

    def operator_feeds(self, kind: str) -> list[Feed]:
        """The feeds delivering ``kind`` (presence, od, cell_sites, market_share), in catalog order."""
        return [f for f in self.feeds if f.operator_feed and f.operator_feed.kind == kind]


class CatalogError(ValueError):
    """The catalog file is invalid. The message names each offending entry and field."""


def _location(raw: dict, loc: tuple) -> str:
    """Turn a pydantic location like ('feeds', 3, 'delivery', 'csv', 'encoding') into words."""
    parts = list(loc)
    prefix = ""
    if len(parts) >= 2 and parts[0] == "feeds" and isinstance(parts[1], int):
        index = parts[1]
        feeds = raw.get("feeds") or []
        entry = feeds[index] if index < len(feeds) and isinstance(feeds[index], dict) else {}
        prefix = f"feed {entry.get('id', '?')!r} (feeds[{index}])"
        parts = parts[2:]
        if (
            parts[:1] == ["delivery"]
            and len(parts) >= 2
            and parts[1] in ("csv", "jsonl", "xlsx", "parquet", "sql", "http")
        ):
            parts = ["delivery", *parts[2:]]
        if parts[:1] == ["columns"] and len(parts) >= 2 and isinstance(parts[1], int):
            cols = entry.get("columns") or []
            col = cols[parts[1]] if parts[1] < len(cols) and isinstance(cols[parts[1]], dict) else {}
            parts = [f"columns[{parts[1]}] ({col.get('name', '?')})", *parts[2:]]
    field = ".".join(str(p) for p in parts)
    return f"{prefix}: {field}" if prefix and field else prefix or field or "(top level)"


def parse_catalog(raw: object, source: str = "<catalog>") -> Catalog:
    if not isinstance(raw, dict):
        raise CatalogError(f"{source}: the catalog must be a mapping with 'version', 'providers' and 'feeds'")
    try:
        catalog = Catalog.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"  {_location(raw, err['loc'])}: {msg}")
        raise CatalogError(f"{source}: invalid source catalog\n" + "\n".join(lines)) from None
    problems = []
    seen: set[str] = set()
    for i, feed in enumerate(catalog.feeds):
        where = f"  feed {feed.id!r} (feeds[{i}])"
        if feed.id in seen:
            problems.append(f"{where}: id: duplicated feed id")
        seen.add(feed.id)
        if feed.provider not in catalog.providers:
            problems.append(
                f"{where}: provider: unknown provider {feed.provider!r}; known: {sorted(catalog.providers)}"
            )
        connection = getattr(feed.delivery, "connection", None)
        if connection is not None:
            conn = catalog.connections.get(connection)
            if conn is None:
                problems.append(f"{where}: delivery.connection: unknown connection {connection!r}")
            elif conn.kind != feed.delivery.kind:
                problems.append(f"{where}: delivery.connection: {connection!r} is a {conn.kind} connection")
        problems += [f"{where}: operator_feed.{problem}" for problem in _operator_problems(catalog, feed)]
    if problems:
        raise CatalogError(f"{source}: invalid source catalog\n" + "\n".join(problems))
    return catalog


def _operator_problems(catalog: Catalog, feed: Feed) -> list[str]:
    """An operator feed's references: its operator is declared, its cell_sites feed is that operator's."""
    declared = feed.operator_feed
    if declared is None:
        return []
    problems = []
    if declared.operator and declared.operator not in catalog.operators:
        problems.append(
            f"operator: unknown operator {declared.operator!r}; declared in `operators`: {sorted(catalog.operators)}"
        )
    if declared.cell_sites:
        cells = catalog.by_id.get(declared.cell_sites)
        cells_declared = cells.operator_feed if cells else None
        if cells_declared is None or cells_declared.kind != "cell_sites":
            problems.append(
                f"cell_sites: {declared.cell_sites!r} is not a feed with operator_feed kind cell_sites"
            )
        elif cells_declared.operator != declared.operator:
            problems.append(
                f"cell_sites: {declared.cell_sites!r} is {cells_declared.operator}'s, not {declared.operator}'s"
            )
    return problems


def load_catalog(path: Path | str | None = None) -> Catalog:
    path = Path(path) if path else settings.catalog_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CatalogError(f"{path}: source catalog not found") from None
    try:
        raw = yaml.load(text, Loader=SAFE_LOADER)
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path}: not valid YAML: {exc}") from None
    return parse_catalog(raw, str(path))
