"""Write the resource catalog as CSV (UTF-8 with BOM, so Excel shows the Chinese), JSON and one HTML page.

Layout of an export directory (default ``$CITYBRAIN_HOME/catalog_export``)::

    current/   resource_catalog.csv, resource_catalog_items.csv, resource_catalog.json, resource_catalog.html
    previous/  the export before (replaced as a whole when a new one is written)
    resource_codes.json  every code issued so far (keeps codes stable when resources are added)

A new export is written into a temporary directory first and then swapped in, so ``current/`` is always
one complete export.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from citybrain import dbt_paths, settings
from citybrain.governance.grades import grade_label
from citybrain.lineage.columns import COMPILED_STORE
from citybrain.resource_catalog.build import (
    CLASSIFICATION_ZH,
    ResourceCatalog,
    build_catalog,
    load_manifest,
)
from citybrain.resource_catalog.history import RunHistory, load_history

EXPORT_DIR_ENV = "CITYBRAIN_CATALOG_EXPORT_DIR"
CURRENT = "current"
PREVIOUS = "previous"
REGISTRY_FILE = "resource_codes.json"
CSV_FILE = "resource_catalog.csv"
ITEMS_CSV_FILE = "resource_catalog_items.csv"
JSON_FILE = "resource_catalog.json"
HTML_FILE = "resource_catalog.html"
TEMPLATE_DIR = Path(__file__).with_name("templates")
TEMPLATE = "resource_catalog.html"

# (official header, attribute) — the order of the CSV columns.
CSV_COLUMNS = [
    ("资源代码", "code"),
    ("资源名称", "name"),
    ("资源英文名称", "name_en"),
    ("资源分类", "category"),
    ("资源摘要", "summary"),
    ("资源提供方", "provider"),
    ("提供方代码", "provider_code"),
    ("来源部门", "source_providers"),
    ("资源格式", "format"),
    ("数据项", "items"),
    ("数据分级", "classification"),
    ("共享类型", "share_type"),
    ("共享条件", "share_conditions"),
    ("共享方式", "share_method"),
    ("开放类型", "open_type"),
    ("开放条件", "open_conditions"),
    ("差分隐私", "differential_privacy"),
    (
        "数据级别",
        "grade",
    ),  # GB/T 43697-2024 一般/重要/核心数据 (the column 数据分级 above is the sharing tier)
    ("重标识风险", "reidentification_risk"),
    ("更新周期", "update_cycle"),
    ("最后更新时间", "last_updated"),
    ("更新状态", "stale"),  # held back at the latest publication (citybrain/staleness.py)
    ("记录数", "row_count"),
    ("质量评分", "quality_score"),
    ("质量评分依据", "quality_basis"),
    ("数据版本", "version"),
    ("关联资源代码", "related_codes"),
    ("存储位置", "table"),
]
ITEM_COLUMNS = [
    ("资源代码", None),
    ("资源名称", None),
    ("数据项名称", "name"),
    ("中文名称", "name_zh"),
    ("中文描述", "description_zh"),
    ("英文描述", "description_en"),
    ("数据类型", "data_type"),
    ("数据分级", "classification"),
    ("个人信息类型", "pii"),
    ("数据级别", "grade"),
    ("来源数据项", "sources"),  # feed.column of every source column (pool items), see sources_text
]


def export_dir() -> Path:
    return Path(os.environ.get(EXPORT_DIR_ENV) or settings.home() / "catalog_export").resolve()


def registry_path() -> Path:
    """The lake's code registry: always beside the default export, wherever a copy is exported to."""
    return export_dir() / REGISTRY_FILE


def read_registry(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def write_registry(path: Path, registry: dict[str, str], catalog: ResourceCatalog) -> None:
    merged = {**registry, **{r.key: r.code for r in catalog.resources}}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(dict(sorted(merged.items())), ensure_ascii=False, indent=2) + "\n", "utf-8")
    os.replace(tmp, path)


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, list):
        return "；".join(str(v) for v in value)
    return value


def items_text(resource) -> str:
    return "；".join(
        f"{i.name}（{i.data_type}）{i.name_zh}" if i.name_zh else f"{i.name}（{i.data_type}）"
        for i in resource.items
    )


def sources_text(item) -> str:
    """来源数据项 as text: ``legal_entities.uscc；si_unit.uscc`` (feed id . column)."""
    return "；".join(f"{s['feed']}.{s['column']}" for s in item.sources)


def write_csv(catalog: ResourceCatalog, path: Path) -> None:
    with open(path, "w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([header for header, _ in CSV_COLUMNS])
        for r in catalog.resources:
            row = []
            for _, attr in CSV_COLUMNS:
                if attr == "items":
                    row.append(items_text(r))
                elif attr == "classification":
                    row.append(f"{r.classification}（{CLASSIFICATION_ZH.get(r.classification, '')}）")
                elif attr == "grade":
                    row.append(grade_label(r.grade) if r.grade else "")
                else:
                    row.append(_cell(getattr(r, attr)))
            writer.writerow(row)


def write_items_csv(catalog: ResourceCatalog, path: Path) -> None:
    with open(path, "w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([header for header, _ in ITEM_COLUMNS])
        for r in catalog.resources:
            for item in r.items:
                writer.writerow(
                    [
                        r.code,
                        r.name,
                        *(
                            grade_label(item.grade)
                            if a == "grade" and item.grade
                            else sources_text(item)
                            if a == "sources"
                            else _cell(getattr(item, a))
                            for _, a in ITEM_COLUMNS[2:]
                        ),
                    ]
                )


def write_json(catalog: ResourceCatalog, path: Path) -> None:
    path.write_text(json.dumps(catalog.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def read_json(path: Path) -> ResourceCatalog:
    return ResourceCatalog.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def render_html(catalog: ResourceCatalog) -> str:
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(["html"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    providers = sorted({(r.provider_code, r.provider) for r in catalog.resources})
    cycles = sorted({r.update_cycle for r in catalog.resources})
    return env.get_template(TEMPLATE).render(
        catalog=catalog,
        providers=providers,
        cycles=cycles,
        share_types=["无条件共享", "有条件共享", "不予共享"],
        open_types=["无条件开放", "有条件开放", "不予开放"],
        classification_zh=CLASSIFICATION_ZH,
        items_text=items_text,
        grade_label=grade_label,
    )


def write_files(catalog: ResourceCatalog, directory: Path) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "csv": directory / CSV_FILE,
        "items_csv": directory / ITEMS_CSV_FILE,
        "json": directory / JSON_FILE,
        "html": directory / HTML_FILE,
    }
    write_csv(catalog, files["csv"])
    write_items_csv(catalog, files["items_csv"])
    write_json(catalog, files["json"])
    files["html"].write_text(render_html(catalog), encoding="utf-8")
    return files


def write_export(catalog: ResourceCatalog, out: Path) -> dict[str, Path]:
    """Write ``out/current`` as a whole, moving the export before to ``out/previous``."""
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=out))
    os.chmod(staging, 0o755)  # mkdtemp makes it private; the export is for people to read
    try:
        write_files(catalog, staging)
        current, previous = out / CURRENT, out / PREVIOUS
        if current.exists():
            shutil.rmtree(previous, ignore_errors=True)
            os.replace(current, previous)
        os.replace(staging, current)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {
        kind: out / CURRENT / name
        for kind, name in (
            ("csv", CSV_FILE),
            ("items_csv", ITEMS_CSV_FILE),
            ("json", JSON_FILE),
            ("html", HTML_FILE),
        )
    }


@dataclass
class ExportResult:
    catalog: ResourceCatalog
    files: dict[str, Path]
    directory: Path


def item_sources(manifest: dict, source_catalog, compiled_store: Path) -> dict:
    """Column lineage of every pool table (pool table -> column -> [(raw relation, column)]): the one Dagster
    attaches to the pool assets (citybrain/lineage/columns.py), from the manifest's compiled SQL or the store of
    compiled SQL the dbt steps write. A lake whose dbt never ran has none: its items list no sources."""
    from citybrain.lineage.columns import column_origins

    return column_origins(manifest, source_catalog, compiled_store)


def load_lake_history(warehouse: Path | None = None, publication_dir: Path | None = None) -> RunHistory:
    from citybrain.publication import LOG_FILE, pool_dir

    directory = publication_dir or pool_dir()
    return load_history(directory / LOG_FILE, warehouse or settings.warehouse_path())


def export_resource_catalog(
    out: Path | None = None,
    history: RunHistory | None = None,
    manifest_path: Path | None = None,
    catalog_path: Path | None = None,
    city_path: Path | None = None,
) -> ExportResult:
    """Build the catalog from this lake's configuration and history and write it to ``out``."""
    from citybrain.catalog import load_catalog
    from citybrain.reference.city import load_city

    source_catalog = load_catalog(catalog_path)
    manifest_file = Path(manifest_path or dbt_paths.manifest_path())
    manifest = load_manifest(manifest_file)
    city = load_city(city_path)
    registry_file = registry_path()
    registry = read_registry(registry_file)
    catalog = build_catalog(
        source_catalog,
        manifest,
        city,
        history if history is not None else load_lake_history(),
        registry,
        column_origins=item_sources(manifest, source_catalog, manifest_file.with_name(COMPILED_STORE)),
    )
    directory = (out or export_dir()).resolve()
    files = write_export(catalog, directory)
    write_registry(registry_file, registry, catalog)
    return ExportResult(catalog, files, directory)
