"""Build the resource catalog (政务数据资源目录) from the source catalog, the dbt manifest and run history.

One resource per pool table (what the shared pool offers) and one per source feed (the departments'
raw resources). Every value is derived, nothing is typed in: names, summaries and data items from the
source catalog and the manifest's descriptions, share and open types from the classification in the
manifest (``config.meta.classification``) or the catalog's column classifications, dates, row counts and
quality scores from the publication log, the ingestion log and the expectation results. The rules are
documented in docs/RESOURCE_CATALOG.md.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from citybrain import dbt_paths
from citybrain.catalog import Catalog, Feed
from citybrain.lineage.columns import feed_columns
from citybrain.reference.city import City
from citybrain.resource_catalog.history import RunHistory
from citybrain.vocabulary import POOL_SCHEMA
from citybrain.vocabulary import pool_models as _pool_models

RAW_SOURCE = "raw"
KIND_POOL = "pool"
KIND_FEED = "feed"

# The department that runs the lake offers the pool. Overridable per city (environment, read at build time).
POOL_PROVIDER_CODE_ENV = "CITYBRAIN_POOL_PROVIDER_CODE"
POOL_PROVIDER_NAME_ENV = "CITYBRAIN_POOL_PROVIDER_NAME"
POOL_PROVIDER_NAME_EN_ENV = "CITYBRAIN_POOL_PROVIDER_NAME_EN"
DIVISION_CODE_ENV = "CITYBRAIN_CATALOG_DIVISION_CODE"
DEFAULT_POOL_PROVIDER = ("SJJ", "数据局", "Data Bureau")

CLASSIFICATION_RANK = {"open": 0, "conditional": 1, "restricted": 2}
CLASSIFICATION_ZH = {"open": "开放", "conditional": "有条件", "restricted": "受限"}
SHARE_TYPE = {"open": "无条件共享", "conditional": "有条件共享", "restricted": "不予共享"}
OPEN_TYPE = {"open": "无条件开放", "conditional": "有条件开放", "restricted": "不予开放"}

POOL_SHARE_METHOD = {
    "open": "共享数据池开放层，只读访问（SQL / DuckDB 发布版本）",
    "conditional": "共享数据池有条件层，经授权只读访问（SQL / DuckDB 发布版本）",
    "restricted": "不发布，仅保留在数据仓库",
}
CADENCE_ZH = {
    "hourly": "每小时",
    "daily": "每日",
    "weekly": "每周",
    "monthly": "每月",
    "termly": "每学期",
    "yearly": "每年",
    "irregular": "不定期",
}
CADENCE_ORDER = ["hourly", "daily", "weekly", "monthly", "termly", "yearly", "irregular"]

DELIVERY_FORMAT = {
    "csv": "CSV文件",
    "jsonl": "JSON Lines文件",
    "xlsx": "Excel电子表格(.xlsx)",
    "parquet": "Parquet文件",
    "sql": "数据库表（部门业务库）",
    "http": "接口（HTTP JSON API）",
}
PII_ZH = {
    "resident_id": "身份证号",
    "person_name": "姓名",
    "phone": "电话号码",
    "address": "地址",
    "birth_date": "出生日期",
    "free_text": "自由文本",
    "person_or_org_id": "证件号码",
    "precise_location": "精确位置",
}
QUALITY_TREND_RUNS = 14  # runs of the quality trend kept per resource: two weeks of nightly runs
SNAPSHOT_ZH = {"full": "全量快照", "incremental": "增量（按更新时间）", "append": "追加"}


@dataclass
class DataItem:
    """信息项: one column of a resource."""

    name: str
    name_zh: str
    description_zh: str
    description_en: str
    data_type: str
    classification: str
    pii: str = ""
    grade: str = ""  # 数据级别 (GB/T 43697-2024): general | important | core; feeds: graded by their provider
    # 来源数据项 (pool items): the feed columns the value is derived from, unmasked, as {feed, column, code of the
    # feed's resource}; read from the same column lineage Dagster shows (citybrain/lineage/columns.py).
    sources: list[dict[str, str]] = field(default_factory=list)


@dataclass
class Resource:
    code: str  # 资源代码
    key: str  # stable identity inside the lake: "pool:<table>" or "feed:<feed id>"
    kind: str  # pool | feed
    name: str  # 资源名称
    name_en: str
    table: str  # where it lives: pool.<table> or raw.<feed>
    category: str  # 资源分类
    summary: str  # 资源摘要
    provider: str  # 资源提供方
    provider_en: str
    provider_code: str  # 提供方代码
    source_providers: list[str]  # 来源部门 (pool resources: the departments its feeds come from)
    format: str  # 资源格式
    classification: str  # open | conditional | restricted
    share_type: str  # 共享类型
    share_conditions: str  # 共享条件
    share_method: str  # 共享方式
    open_type: str  # 开放类型
    open_conditions: str  # 开放条件
    update_cycle: str  # 更新周期 (Chinese label)
    update_cycle_code: str  # hourly | daily | ... | irregular
    last_updated: str | None  # 最后更新时间
    row_count: int | None  # 记录数
    quality_score: float | None  # 质量评分 (0-100)
    quality_basis: str  # 质量评分依据
    version: str | None  # 数据版本 (publication version)
    related_codes: list[str] = field(default_factory=list)  # 关联资源代码
    items: list[DataItem] = field(default_factory=list)  # 数据项
    differential_privacy: str = ""  # 差分隐私: budget spent, when the table is released with DP noise
    grade: str = ""  # 数据级别 (GB/T 43697-2024) of a pool table: general | important | core
    quasi_identifiers: list[str] = field(default_factory=list)  # 准标识符 (conditional tables)
    smallest_equivalence_class: int | None = None  # 最小等价类 as last published
    unique_share: float | None = None  # 唯一记录占比 as last published
    reidentification_risk: str = ""  # 重标识风险, in words
    stale: str = ""  # 更新状态: held back at the latest publication (citybrain/staleness.py), in words
    # 质量趋势: the suite's outcome in its last QUALITY_TREND_RUNS runs, oldest first ({run_id, evaluated_at,
    # passed, evaluated, score}); the portal draws it on the resource page
    quality_trend: list[dict] = field(default_factory=list)

    @property
    def item_count(self) -> int:
        return len(self.items)


@dataclass
class ResourceCatalog:
    city_name: str
    city_name_en: str
    division_code: str
    generated_at: str
    sources: list[str]
    resources: list[Resource]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ResourceCatalog:
        resources = [
            Resource(**{**r, "items": [DataItem(**i) for i in r.get("items", [])]}) for r in data["resources"]
        ]
        return cls(**{**data, "resources": resources})


# --- helpers ---------------------------------------------------------------------------------------


def division_code(city: City) -> str:
    """The city's division code for resource codes: ``$CITYBRAIN_CATALOG_DIVISION_CODE``, else the level
    all configured counties share (their prefecture ``xxxx00``, else their province ``xx0000``), else — a
    region across provinces — the prefecture of the first county listed."""
    explicit = os.environ.get(DIVISION_CODE_ENV, "").strip()
    if explicit:
        return explicit
    counties = [c for c in city.counties if re.fullmatch(r"\d{6}", c)]
    if not counties:
        return "000000"
    if len({c[:4] for c in counties}) == 1:
        return counties[0][:4] + "00"
    if len({c[:2] for c in counties}) == 1:
        return counties[0][:2] + "0000"
    return counties[0][:4] + "00"


def pool_provider() -> tuple[str, str, str]:
    code, name, name_en = DEFAULT_POOL_PROVIDER
    return (
        os.environ.get(POOL_PROVIDER_CODE_ENV) or code,
        os.environ.get(POOL_PROVIDER_NAME_ENV) or name,
        os.environ.get(POOL_PROVIDER_NAME_EN_ENV) or name_en,
    )


def public_name(path: Path) -> str:
    """How the catalog names a file it was built from: relative to the lake ($CITYBRAIN_HOME), else the bare
    file name. The catalog is a public page: it must not print the machine's directories."""
    from citybrain import settings

    try:
        return path.resolve().relative_to(settings.home().resolve()).as_posix()
    except ValueError:
        return path.name


def split_description(text: str) -> tuple[str, str]:
    """``"中文名 — English text"`` -> (中文名, English text); text without the dash is kept whole on the side
    its script says (any CJK character: Chinese)."""
    text = " ".join((text or "").split())
    for dash in (" — ", " -- ", " – "):
        if dash in text:
            zh, en = text.split(dash, 1)
            return zh.strip(), en.strip()
    if re.search(r"[\u4e00-\u9fff]", text):
        return text, ""
    return "", text


def _feed_item_description(text: str) -> tuple[str, str]:
    """Catalog column descriptions are Chinese with an optional note in brackets (often English)."""
    match = re.match(r"^(.*?)\s*\((.*)\)\s*$", text)
    if match and re.search(r"[\u4e00-\u9fff]", match.group(1)):
        return match.group(1).strip(), match.group(2).strip()
    return split_description(text)


def most_restrictive(classifications: list[str]) -> str:
    known = [c for c in classifications if c in CLASSIFICATION_RANK]
    return max(known, key=CLASSIFICATION_RANK.__getitem__) if known else "restricted"


def _node_meta(node: dict) -> dict:
    return {**(node.get("meta") or {}), **((node.get("config") or {}).get("meta") or {})}


def _column_meta(column: dict) -> dict:
    return {**(column.get("meta") or {}), **((column.get("config") or {}).get("meta") or {})}


def score_percent(passed: int, evaluated: int) -> float | None:
    return round(100.0 * passed / evaluated, 1) if evaluated else None


# --- lineage ---------------------------------------------------------------------------------------


def pool_models(manifest: dict) -> list[dict]:
    """The pool's models in the order of their table names."""
    return sorted(_pool_models(manifest).values(), key=lambda n: n.get("alias") or n["name"])


def upstream_sources(manifest: dict, unique_id: str) -> set[tuple[str, str]]:
    """(source_name, table) of every dbt source upstream of a node."""
    nodes, sources = manifest["nodes"], manifest.get("sources", {})
    found: set[tuple[str, str]] = set()
    seen: set[str] = set()
    stack = [unique_id]
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        if current in sources:
            found.add((sources[current]["source_name"], sources[current]["name"]))
            continue
        node = nodes.get(current)
        if node:
            stack.extend((node.get("depends_on") or {}).get("nodes") or [])
    return found


def pool_update_cycle(feed_cadences: list[str], source_names: set[str]) -> str:
    """A pool table changes as often as its fastest feed; one built only from run metadata (ingestion log,
    check results) is rebuilt by every run (daily); one built only from reference data is 不定期."""
    if feed_cadences:
        return min(feed_cadences, key=CADENCE_ORDER.index)
    if source_names - {"reference"}:
        return "daily"
    return "irregular"


# --- codes -----------------------------------------------------------------------------------------


def assign_codes(
    wanted: list[tuple[str, str]], division: str, registry: dict[str, str] | None = None
) -> dict[str, str]:
    """Resource codes ``<division>-<provider code>-<4-digit sequence>``.

    ``wanted`` is (resource key, provider code) in a fixed order (feeds in catalog order, then pool
    tables by name). A code in ``registry`` (the codes issued by earlier exports) is kept as long as its
    prefix still matches; a new resource gets the next free sequence of its prefix. Codes are never
    reused for another resource while the registry is kept."""
    registry = dict(registry or {})
    codes: dict[str, str] = {}
    used: dict[str, set[int]] = {}
    for code in registry.values():
        prefix, _, seq = code.rpartition("-")
        if seq.isdigit():
            used.setdefault(prefix, set()).add(int(seq))
    for key, provider_code in wanted:
        prefix = f"{division}-{provider_code}"
        old = registry.get(key)
        if old and old.rpartition("-")[0] == prefix:
            codes[key] = old
    for key, provider_code in wanted:
        if key in codes:
            continue
        prefix = f"{division}-{provider_code}"
        taken = used.setdefault(prefix, set())
        seq = max(taken, default=0) + 1
        taken.add(seq)
        codes[key] = f"{prefix}-{seq:04d}"
    return codes


# --- resources -------------------------------------------------------------------------------------


def _share_conditions(
    classification: str, kind: str, restricted_items: list[DataItem], pool_codes: list[str]
) -> str:
    if classification == "open":
        return "无"
    if classification == "conditional":
        return (
            "经数据主管部门审批，限于履行职责需要的部门使用，不得转授权；记录级数据以假名键关联，"
            "不含身份证号、姓名、电话、地址等直接标识"
        )
    fields = "、".join(
        f"{i.name}（{PII_ZH.get(i.pii, i.name_zh or i.name)}）" if i.pii else i.name for i in restricted_items
    )
    text = f"含受限数据项 {fields}，原始数据不予共享" if fields else "原始数据不予共享"
    if kind == KIND_FEED:
        text += "；经脱敏后通过数据池资源提供" + (f"（{'、'.join(pool_codes)}）" if pool_codes else "")
    return text


def _open_conditions(classification: str, small_cells: bool = False) -> str:
    """开放条件. ``small_cells``: an open table whose counts of people or trips are suppressed below k (it
    has ``*_suppressed`` flag columns); the text states k from catalog/privacy.yaml, the one the models and
    the publication check use. Conditional record-level tables are not small-cell suppressed, so their text
    does not say so (docs/GOVERNANCE.md "Small-cell suppression")."""
    if classification == "open" and small_cells:
        from citybrain.privacy.config import small_cell_k

        k = small_cell_k()
        return (
            f"无；人数、人次小于 {k} 的单元格已抑制（置空并标记），并做互补抑制，"
            f"被抑制的值不能由公开的合计或差值推算"
        )
    return {
        "open": "无",
        "conditional": "经申请审核、签订数据使用协议后在授权范围内使用",
        "restricted": "不予开放",
    }[classification]


def _quality(history: RunHistory, suite: str, prefer_run: str | None) -> tuple[float | None, str]:
    score = history.latest_score(suite, prefer_run)
    if score is None or not score.evaluated:
        return None, f"暂无 {suite} 校验结果"
    when = (score.evaluated_at or "")[:19]
    return (
        score_percent(score.passed, score.evaluated),
        f"{suite}: {score.passed}/{score.evaluated} 项校验通过（运行 {score.run_id[:8]}，{when}）",
    )


def _quality_trend(history: RunHistory, suite: str) -> list[dict]:
    """The suite's outcomes in its last ``QUALITY_TREND_RUNS`` runs, oldest first."""
    runs = sorted((history.scores.get(suite) or {}).values(), key=lambda s: (s.evaluated_at or "", s.run_id))
    return [
        {"run_id": s.run_id, "evaluated_at": s.evaluated_at, "passed": s.passed, "evaluated": s.evaluated,
         "score": score_percent(s.passed, s.evaluated)}
        for s in runs[-QUALITY_TREND_RUNS:]
        if s.evaluated
    ]  # fmt: skip


def _differential_privacy(periods: list[dict] | None) -> str:
    """The budget of a table published with differential-privacy noise, e.g. "ε≤1/期（预算 3），2 期，
    单期累计最高 ε=2"; empty when the table carries no noise (docs/GOVERNANCE.md)."""
    if not periods:
        return ""
    per_release = max(p["epsilon"] for p in periods)
    budget = max(p["budget"] for p in periods)
    most = max(p["spent_total"] for p in periods)
    return (
        f"差分隐私（OpenDP 拉普拉斯机制）：每期发布 ε≤{per_release:g}（每期预算 {budget:g}），"
        f"{len(periods)} 期，单期累计最高 ε={most:g}"
    )


def _stale(hold: dict | None) -> str:
    """A held-back table, in words: since when, what it keeps, why."""
    if not hold:
        return ""
    if hold.get("whole"):
        kept = hold.get("kept_version") or "—"
        scope = f"暂停更新，保留版本 {kept} 的内容"
    else:
        scope = f"部分日期暂缓更新（{'、'.join(hold.get('held_days') or [])}，保留上一版本的这些日期）"
    return f"{scope}；自 {hold.get('stale_since')} 起；原因：{hold.get('reason')}"


def _content_date(release, hold: dict | None) -> str | None:
    """When the table's content was published: a table held back whole keeps an earlier version's content."""
    if hold and hold.get("whole") and hold.get("content_published_at"):
        return hold["content_published_at"]
    return release.published_at if release else None


def _privacy_fields(node: dict, risk: dict | None) -> dict:
    """Grade (declared in the model's meta) and re-identification risk (measured by the last publication
    of the table, citybrain/governance/publication_gate.py) of a pool resource."""
    meta = _node_meta(node)
    qis = meta.get("quasi_identifiers")
    fields = {"grade": str(meta.get("grade") or ""), "quasi_identifiers": list(qis or [])}
    if qis == []:
        fields["reidentification_risk"] = "无准标识符（记录不描述个人的可识别属性）"
    if not risk:
        return fields
    smallest, unique = risk.get("smallest_class"), risk.get("unique_share")
    fields.update(smallest_equivalence_class=smallest, unique_share=unique)
    if qis:
        fields["reidentification_risk"] = (
            f"准标识符 {'、'.join(qis)}；最小等价类 {smallest if smallest is not None else '—'}"
            f"（要求≥{risk.get('min_equivalence_class')}，k-匿名）；唯一记录 {risk.get('unique_records', 0)} 条"
            f"（{100 * (unique or 0):.2f}%）；{risk.get('records', 0)} 条记录，{risk.get('classes', 0)} 个等价类"
        )
    return fields


def _feed_format(feed: Feed) -> str:
    delivery = feed.delivery
    label = DELIVERY_FORMAT.get(delivery.kind, delivery.kind)
    encoding = getattr(delivery, "encoding", None)
    if encoding and delivery.kind in ("csv", "jsonl"):
        label += (
            f"（{encoding.upper()}"
            + ("，gzip压缩" if getattr(delivery, "compression", "") == "gzip" else "")
            + "）"
        )
    return label + f"；入湖后为数据库表（DuckDB raw.{feed.id}）"


def _feed_summary(catalog: Catalog, feed: Feed) -> str:
    provider = catalog.providers[feed.provider]
    if feed.description:
        return feed.description
    partition = "按日分区交付" if feed.is_partitioned else "不分区"
    return (
        f"{provider.name}提供的{feed.title.zh}（{feed.title.en}）原始数据：{SNAPSHOT_ZH[feed.snapshot]}，"
        f"{partition}，{len(feed.columns)} 个数据项，主键 {', '.join(feed.key)}。"
    )


def _feed_resource(
    catalog: Catalog, feed: Feed, history: RunHistory, code: str, derived: list[str]
) -> Resource:
    provider = catalog.providers[feed.provider]
    items = []
    for column in feed.columns:
        zh, en = _feed_item_description(column.description)
        items.append(
            DataItem(
                name=column.name,
                name_zh=zh,
                description_zh=column.description,
                description_en=en,
                data_type=column.type,
                classification=column.classification,
                pii="" if column.pii == "none" else column.pii,
            )
        )
    classification = most_restrictive([c.classification for c in feed.columns])
    restricted = [i for i in items if i.classification == "restricted"]
    deliveries = history.feeds.get(feed.id)
    quality, basis = _quality(history, f"raw.{feed.id}", None)
    return Resource(
        code=code,
        key=f"{KIND_FEED}:{feed.id}",
        kind=KIND_FEED,
        name=feed.title.zh,
        name_en=feed.title.en,
        table=f"raw.{feed.id}",
        category="部门数据资源",
        summary=_feed_summary(catalog, feed),
        provider=provider.name,
        provider_en=provider.en,
        provider_code=feed.provider,
        source_providers=[provider.name],
        format=_feed_format(feed),
        classification=classification,
        share_type=SHARE_TYPE[classification],
        share_conditions=_share_conditions(classification, KIND_FEED, restricted, derived),
        share_method="数据仓库原始层（内部，仅数据工程团队）",
        open_type=OPEN_TYPE[classification],
        open_conditions=_open_conditions(classification),
        update_cycle=CADENCE_ZH[feed.cadence],
        update_cycle_code=feed.cadence,
        last_updated=deliveries.last_delivery_at if deliveries else None,
        row_count=deliveries.rows if deliveries else None,
        quality_score=quality,
        quality_basis=basis,
        quality_trend=_quality_trend(history, f"raw.{feed.id}"),
        version=None,
        related_codes=derived,
        items=items,
    )


def _pool_resource(
    node: dict,
    catalog: Catalog,
    history: RunHistory,
    code: str,
    feeds: list[Feed],
    source_names: set[str],
    feed_codes: list[str],
    operator: tuple[str, str, str],
    origins: dict[str, list[tuple[str, str]]] | None = None,
    codes: dict[str, str] | None = None,
) -> Resource:
    table = node.get("alias") or node["name"]
    name_zh, summary = split_description(node.get("description") or "")
    items = []
    for column in (node.get("columns") or {}).values():
        meta = _column_meta(column)
        zh, en = split_description(column.get("description") or "")
        sources = [
            {"feed": feed, "column": name, "code": (codes or {}).get(f"{KIND_FEED}:{feed}", "")}
            for feed, name in feed_columns((origins or {}).get(column["name"].lower(), []))
        ]
        items.append(
            DataItem(
                name=column["name"],
                name_zh=zh,
                description_zh=zh,
                description_en=en,
                data_type=column.get("data_type") or "",
                classification=str(meta.get("classification") or ""),
                pii="" if meta.get("pii") in (None, "none") else str(meta["pii"]),
                grade=str(meta.get("grade") or ""),
                sources=sources,
            )
        )
    declared = _node_meta(node).get("classification")
    classification = (
        declared if declared in CLASSIFICATION_RANK else most_restrictive([i.classification for i in items])
    )
    restricted = [i for i in items if i.classification == "restricted"]
    cycle = pool_update_cycle([f.cadence for f in feeds], source_names)
    release = history.tables.get(table)
    quality, basis = _quality(history, f"{POOL_SCHEMA}.{table}", release.run_id if release else None)
    providers = []
    for feed in feeds:
        name = catalog.providers[feed.provider].name
        if name not in providers:
            providers.append(name)
    return Resource(
        code=code,
        key=f"{KIND_POOL}:{table}",
        kind=KIND_POOL,
        name=name_zh or table,
        name_en=table,
        table=f"{POOL_SCHEMA}.{table}",
        category="共享数据池资源",
        summary=summary or name_zh or table,
        provider=operator[1],
        provider_en=operator[2],
        provider_code=operator[0],
        source_providers=providers,
        format=f"数据库表（DuckDB {POOL_SCHEMA}.{table}，只读发布文件）",
        classification=classification,
        share_type=SHARE_TYPE[classification],
        share_conditions=_share_conditions(classification, KIND_POOL, restricted, []),
        share_method=POOL_SHARE_METHOD[classification],
        open_type=OPEN_TYPE[classification],
        open_conditions=_open_conditions(classification, any(i.name.endswith("_suppressed") for i in items)),
        update_cycle=CADENCE_ZH[cycle],
        update_cycle_code=cycle,
        last_updated=_content_date(release, history.stale.get(table)),
        row_count=release.rows if release else None,
        quality_score=quality,
        quality_basis=basis,
        quality_trend=_quality_trend(history, f"{POOL_SCHEMA}.{table}"),
        version=release.version if release else None,
        related_codes=feed_codes,
        items=items,
        differential_privacy=_differential_privacy(history.privacy.get(table)),
        stale=_stale(history.stale.get(table)),
        **_privacy_fields(node, history.reidentification.get(table)),
    )


def build_catalog(
    catalog: Catalog,
    manifest: dict,
    city: City,
    history: RunHistory | None = None,
    code_registry: dict[str, str] | None = None,
    now: datetime | None = None,
    column_origins: dict[str, dict[str, list[tuple[str, str]]]] | None = None,
) -> ResourceCatalog:
    """The resource catalog: feeds in catalog order, then pool tables by name. ``column_origins`` (pool table ->
    column -> [(raw relation, column)], citybrain.lineage.columns) gives each pool item its source columns."""
    history = history or RunHistory()
    division = division_code(city)
    operator = pool_provider()
    models = pool_models(manifest)
    lineage = {n["unique_id"]: upstream_sources(manifest, n["unique_id"]) for n in models}
    model_feeds = {
        uid: [f for f in catalog.feeds if (RAW_SOURCE, f.id) in sources] for uid, sources in lineage.items()
    }
    wanted = [(f"{KIND_FEED}:{f.id}", f.provider) for f in catalog.feeds] + [
        (f"{KIND_POOL}:{n.get('alias') or n['name']}", operator[0]) for n in models
    ]
    codes = assign_codes(wanted, division, code_registry)

    resources = []
    for feed in catalog.feeds:
        derived = [
            codes[f"{KIND_POOL}:{n.get('alias') or n['name']}"]
            for n in models
            if feed in model_feeds[n["unique_id"]]
        ]
        resources.append(_feed_resource(catalog, feed, history, codes[f"{KIND_FEED}:{feed.id}"], derived))
    for node in models:
        table = node.get("alias") or node["name"]
        feeds = model_feeds[node["unique_id"]]
        resources.append(
            _pool_resource(
                node,
                catalog,
                history,
                codes[f"{KIND_POOL}:{table}"],
                feeds,
                {s for s, _ in lineage[node["unique_id"]]},
                [codes[f"{KIND_FEED}:{f.id}"] for f in feeds],
                operator,
                (column_origins or {}).get(table),
                codes,
            )
        )
    return ResourceCatalog(
        city_name=city.name_zh,
        city_name_en=city.name_en,
        division_code=division,
        generated_at=(now or datetime.now(UTC)).isoformat(timespec="seconds"),
        sources=[public_name(Path(s)) for s in history.sources],
        resources=resources,
    )


def load_manifest(path: Path) -> dict:
    return dbt_paths.read_manifest(Path(path))
