"""Build-time classification check of the pool (DESIGN.md §5, docs/GOVERNANCE.md "Build-time check").

Publication writes each tier by the model's ``meta.classification``, so a wrong label publishes data to the
wrong audience. This module fails the build instead, on three rules:

1. every pool model (schema ``pool``) and each of its columns carries ``meta.classification``
   (open | conditional | restricted) and every column ``meta.pii`` (a catalog PII kind or ``none``);
2. a model's tier is the strictest of its columns': a model labelled less strictly than one of its
   columns (or more strictly than all of them) is a violation; a column labelled less strictly than a
   source column it is derived from (unmasked) is one too;
3. no open or conditional model exposes a column derived from a restricted PII source column (catalog)
   unless the derivation goes through a masking function;
4. every pool model and column carries its GB/T 43697-2024 grade (``meta.grade``), and nothing graded
   important or core is marked open (governance/grades.py);
5. every conditional model declares its quasi-identifiers (``meta.quasi_identifiers``), each a column of
   the model (privacy/reidentification.py; publication measures them).

Rules 2 and 3 use column lineage computed with sqlglot over the compiled SQL of the dbt nodes (manifest
``compiled_code``), walking refs back to the sources. Masking is recognised by the function names the
masking macros compile to (``MASKING_FUNCTIONS``): a model that re-implements a mask inline is reported,
which is the point, since the macros are what is reviewed. Flows through filters, joins, window keys and
IS NULL tests are not tracked: the lineage is of values.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp

from citybrain.vocabulary import TIER_RANK, TIERS, pool_models

SQLGLOT_DIALECTS = {"duckdb": "duckdb", "spark": "spark"}  # dbt adapter type -> sqlglot dialect
RANK = TIER_RANK

# Functions whose result carries none of its arguments' lineage: the masking / generalisation functions
# the macros of dbt_project/macros/masking.sql and domain.sql compile to, plus attribute extractors whose
# result is not personal (a sex bit, a reason code, a validated organisation code) and counts.
MASKING_PREFIXES = ("cb_mask_", "cb_scrub_", "cb_age_", "cb_generalise_")
MASKING_FUNCTIONS = {
    "cb_pseudonym",  # keyed hash
    "cb_h3_cell",  # precise location -> grid cell
    "cb_ric_sex",
    "cb_ric_problem",
    "cb_uscc_problem",
    "cb_uscc_normalize",  # null unless the value is an organisation's code (never a person's ID)
}


@dataclass(frozen=True)
class Violation:
    model: str
    column: str | None
    rule: str  # missing_classification | tier_mismatch | column_below_source | unmasked_restricted_pii | lineage_unknown
    # | missing_grade | grade_below_column | graded_data_in_open_tier | quasi_identifiers
    message: str

    def __str__(self) -> str:
        where = f"{self.model}.{self.column}" if self.column else self.model
        return f"{where}: {self.message} [{self.rule}]"


@dataclass(frozen=True)
class Origin:
    """A source column a value is derived from without masking."""

    relation: str  # schema.table of the source, e.g. raw.household_registry
    column: str


def _is_masking(name: str) -> bool:
    name = name.lower()
    return name in MASKING_FUNCTIONS or name.startswith(MASKING_PREFIXES)


# --- relations: what each column of a table, CTE or subquery derives from --------------------------------


class Relation:
    """Columns of a relation and the origins each derives from. ``open_ended`` relations (a source whose
    columns are not declared, or a ``*`` over one) answer any column name."""

    def __init__(self, columns: dict[str, frozenset[Origin]], fallback: list[Relation] | None = None):
        self.columns = columns
        self.fallback = fallback or []

    @property
    def open_ended(self) -> bool:
        return bool(self.fallback)

    def get(self, name: str) -> frozenset[Origin] | None:
        name = name.lower()
        if name in self.columns:
            return self.columns[name]
        for rel in self.fallback:
            found = rel.get(name)
            if found is not None:
                return found
        return None


class OpaqueRelation(Relation):
    """A table nothing is known about (reference data, table functions): any column, no origins."""

    def __init__(self):
        super().__init__({})

    @property
    def open_ended(self) -> bool:
        return True

    def get(self, name: str) -> frozenset[Origin] | None:
        return frozenset()


class _Lineage:
    """Column lineage of one compiled SELECT statement against known upstream relations."""

    def __init__(self, tables: Mapping[str, Relation], dialect: str = "duckdb"):
        self.tables = tables  # "schema.table" -> Relation
        self.dialect = dialect

    def statement(self, sql: str) -> Relation:
        tree = sqlglot.parse_one(sql, read=self.dialect)
        return self.query(tree, {})

    def query(self, node: exp.Expression, ctes: dict[str, Relation]) -> Relation:
        ctes = dict(ctes)
        with_ = node.args.get("with_") or node.args.get("with")
        if with_:
            for cte in with_.expressions:
                ctes[cte.alias_or_name.lower()] = self.query(cte.this, ctes)
        if isinstance(node, exp.Subquery):
            return self.query(node.this, ctes)
        if isinstance(node, exp.SetOperation):
            left, right = self.query(node.left, ctes), self.query(node.right, ctes)
            names = list(left.columns)
            right_values = list(right.columns.values())
            merged = {
                name: origins | (right_values[i] if i < len(right_values) else frozenset())
                for i, (name, origins) in enumerate(left.columns.items())
            }
            return Relation(merged, left.fallback + right.fallback if not names else None)
        if isinstance(node, exp.Select):
            return self.select(node, ctes)
        return OpaqueRelation()

    def source(self, node: exp.Expression, ctes: dict[str, Relation]) -> Relation:
        if isinstance(node, exp.Table):
            if isinstance(node.this, exp.Identifier | str):
                name = node.name.lower()
                schema = (node.db or "").lower()
                if not schema and name in ctes:
                    return ctes[name]
                return self.tables.get(f"{schema}.{name}", OpaqueRelation())
            return OpaqueRelation()  # table function (unnest, generate_series, read_csv ...)
        if isinstance(node, exp.Subquery):
            return self.query(node.this, ctes)
        if isinstance(node, exp.Lateral | exp.Unnest):
            return OpaqueRelation()
        return OpaqueRelation()

    def select(self, node: exp.Select, ctes: dict[str, Relation]) -> Relation:
        sources: dict[str, Relation] = {}
        order: list[str] = []
        from_ = node.args.get("from_") or node.args.get("from")
        items = [from_.this] if from_ else []
        items += [join.this for join in node.args.get("joins") or []]
        for item in items:
            alias = item.alias_or_name.lower() if not isinstance(item, exp.Unnest) else item.alias.lower()
            sources[alias] = self.source(item, ctes)
            order.append(alias)

        columns: dict[str, frozenset[Origin]] = {}
        fallback: list[Relation] = []

        def star(rels: Iterable[Relation], star_node: exp.Star):
            excluded = {
                c.name.lower() for c in star_node.args.get("except_") or star_node.args.get("except") or []
            }
            replaced = {r.alias.lower(): r.this for r in star_node.args.get("replace") or []}
            for rel in rels:
                for name, origins in rel.columns.items():
                    if name in excluded:
                        continue
                    columns[name] = (
                        self.expression(replaced[name], sources, columns) if name in replaced else origins
                    )
                fallback.extend(rel.fallback or ([rel] if isinstance(rel, OpaqueRelation) else []))

        for select in node.selects:
            if isinstance(select, exp.Star):
                star([sources[a] for a in order], select)
            elif isinstance(select, exp.Column) and isinstance(select.this, exp.Star):
                star([sources.get(select.table.lower(), OpaqueRelation())], select.this)
            else:
                columns[select.alias_or_name.lower()] = self.expression(
                    select.this if isinstance(select, exp.Alias) else select, sources, columns
                )
        return Relation(columns, fallback)

    def expression(
        self, node: exp.Expression, sources: dict[str, Relation], earlier: dict[str, frozenset[Origin]]
    ) -> frozenset[Origin]:
        """Origins of an expression's value: its column references (CASE conditions included: they map
        values), except inside a masking function, a count, or an IS [NOT] NULL test (whether a value is
        present says nothing about it)."""
        found: set[Origin] = set()
        stack = [node]
        while stack:
            current = stack.pop()
            if isinstance(current, exp.Anonymous) and _is_masking(current.name):
                continue
            if isinstance(current, exp.Count):
                continue
            if isinstance(current, exp.Is):
                continue
            if isinstance(current, exp.Window):
                stack.append(current.this)  # not the partition / order keys
                continue
            if isinstance(current, exp.Subquery | exp.Select):
                rel = self.query(current, {})
                for origins in rel.columns.values():
                    found |= origins
                continue
            if isinstance(current, exp.Column):
                if isinstance(current.this, exp.Star):
                    continue
                found |= self.column(current, sources, earlier)
                continue
            stack.extend(current.iter_expressions())
        return frozenset(found)

    @staticmethod
    def column(
        column: exp.Column, sources: dict[str, Relation], earlier: dict[str, frozenset[Origin]]
    ) -> frozenset[Origin]:
        name = column.name.lower()
        if column.table:
            rel = sources.get(column.table.lower())
            found = rel.get(name) if rel else None
            return found or frozenset()
        known = [rel.get(name) for rel in sources.values() if name in rel.columns]
        if known:
            return frozenset().union(*known)
        for rel in sources.values():
            found = rel.get(name)
            if found:
                return found
        return earlier.get(name, frozenset())  # DuckDB lets a select reuse an earlier alias


# --- manifest and catalog -----------------------------------------------------------------------------


def _meta(props: Mapping[str, Any]) -> dict:
    """``meta`` as dbt 1.10+ writes it (config.meta), falling back to the top-level copy."""
    return {**(props.get("meta") or {}), **((props.get("config") or {}).get("meta") or {})}


def _relation_key(props: Mapping[str, Any]) -> str:
    schema = props.get("schema") or ""
    name = props.get("alias") or props.get("identifier") or props.get("name")
    return f"{schema}.{name}".lower()


def _catalog_columns(catalog) -> dict[str, dict[str, tuple[str, str]]]:
    """raw.<feed> -> column -> (classification, pii) from the source catalog (a Catalog or its dict)."""
    feeds = catalog.feeds if hasattr(catalog, "feeds") else catalog["feeds"]
    result = {}
    for feed in feeds:
        fid = feed.id if hasattr(feed, "id") else feed["id"]
        cols = feed.columns if hasattr(feed, "columns") else feed["columns"]
        result[f"raw.{fid}".lower()] = {
            (c.name if hasattr(c, "name") else c["name"]).lower(): (
                c.classification if hasattr(c, "classification") else c["classification"],
                (c.pii if hasattr(c, "pii") else c.get("pii", "none")) or "none",
            )
            for c in cols
        }
    return result


def pii_kinds(catalog) -> set[str]:
    """PII kinds of the catalog (its Literal type, or the kinds its columns use)."""
    try:
        from typing import get_args

        from citybrain.catalog import PiiKind

        return set(get_args(PiiKind))
    except ImportError:  # pragma: no cover
        return {kind for cols in _catalog_columns(catalog).values() for _, kind in cols.values()} | {"none"}


def _lineage_order(manifest: Mapping[str, Any], targets: Iterable[str]) -> list[str]:
    """Targets and their upstream models/snapshots, parents first."""
    nodes = manifest.get("nodes", {})
    seen: dict[str, None] = {}

    def visit(uid: str):
        if uid in seen or uid not in nodes:
            return
        for parent in nodes[uid].get("depends_on", {}).get("nodes", []):
            visit(parent)
        seen[uid] = None

    for uid in targets:
        visit(uid)
    return [uid for uid in seen if nodes[uid].get("resource_type") in ("model", "snapshot")]


def lineage_needs(manifest: Mapping[str, Any], targets: Iterable[str]) -> list[str]:
    """Model/snapshot ids in the lineage of ``targets`` whose compiled SQL the manifest lacks."""
    nodes = manifest.get("nodes", {})
    return [uid for uid in _lineage_order(manifest, targets) if not nodes[uid].get("compiled_code")]


def column_lineage(
    manifest: Mapping[str, Any], catalog, targets: Iterable[str], compiled: Mapping[str, str] | None = None
) -> dict[str, Relation]:
    """Relation (column -> source origins) of each target model and its upstream nodes. ``compiled``
    supplies compiled SQL for nodes the manifest has none for (e.g. built by an earlier dbt step)."""
    nodes = manifest.get("nodes", {})
    compiled = compiled or {}
    tables: dict[str, Relation] = {}
    for source in manifest.get("sources", {}).values():
        key = _relation_key(source)
        declared = {c.lower() for c in (source.get("columns") or {})}
        catalog_cols = _catalog_columns(catalog).get(key, {})
        names = declared | set(catalog_cols)
        if names:
            tables[key] = Relation(
                {name: frozenset({Origin(key, name)}) for name in names}, fallback=[OpaqueRelation()]
            )
    result: dict[str, Relation] = {}
    # The SQL dialect of the engine the manifest was compiled for (duckdb, or spark on the scale-out target).
    dialect = SQLGLOT_DIALECTS.get(manifest.get("metadata", {}).get("adapter_type"), "duckdb")
    for uid in _lineage_order(manifest, targets):
        node = nodes[uid]
        sql = node.get("compiled_code") or compiled.get(uid)
        if not sql:
            continue
        try:
            relation = _Lineage(tables, dialect).statement(sql)
        except sqlglot.errors.ParseError:
            continue
        tables[_relation_key(node)] = result[uid] = relation
    return result


def check_manifest(
    manifest: Mapping[str, Any],
    catalog,
    *,
    models: Iterable[str] | None = None,
    compiled: Mapping[str, str] | None = None,
) -> list[Violation]:
    """All violations of the pool's classification rules (module docstring). ``models`` limits the
    lineage rules to those pool models (unique ids or names; default all); the metadata rules always
    cover every pool model. A model whose lineage cannot be traced (compiled SQL missing for it or an
    ancestor, see ``lineage_needs``) is a violation too: unchecked is not clean."""
    violations: list[Violation] = []
    pool = pool_models(manifest)
    kinds = pii_kinds(catalog)
    source_cols = _catalog_columns(catalog)

    for node in pool.values():
        name = node["name"]
        tier = _meta(node).get("classification")
        if tier not in TIERS:
            violations.append(
                Violation(
                    name,
                    None,
                    "missing_classification",
                    f"meta.classification is {tier!r}, not one of {TIERS}",
                )
            )
        column_tiers = []
        if not node.get("columns"):
            violations.append(Violation(name, None, "missing_classification", "no columns declared in YAML"))
        for column, props in (node.get("columns") or {}).items():
            meta = _meta(props)
            if meta.get("classification") not in TIERS:
                violations.append(
                    Violation(
                        name,
                        column,
                        "missing_classification",
                        f"meta.classification is {meta.get('classification')!r}",
                    )
                )
            else:
                column_tiers.append(meta["classification"])
            if meta.get("pii") not in kinds:
                violations.append(
                    Violation(
                        name,
                        column,
                        "missing_classification",
                        f"meta.pii is {meta.get('pii')!r}, not a catalog PII kind or none",
                    )
                )
        if tier in TIERS and column_tiers:
            strictest = max(column_tiers, key=RANK.__getitem__)
            if strictest != tier:
                violations.append(
                    Violation(
                        name, None, "tier_mismatch",
                        f"model is {tier} but its strictest column is {strictest} (a model's tier is the strictest of its columns)",
                    )
                )  # fmt: skip
    violations += grade_and_quasi_identifier_violations(manifest)

    wanted = set(models) if models is not None else None
    targets = [uid for uid, node in pool.items() if wanted is None or uid in wanted or node["name"] in wanted]
    missing = set(lineage_needs(manifest, targets)) - set(compiled or {})
    relations = column_lineage(manifest, catalog, targets, compiled)
    nodes = manifest.get("nodes", {})
    for uid in targets:
        node = pool[uid]
        name = node["name"]
        unknown = [n for n in _lineage_order(manifest, [uid]) if n in missing or n not in relations]
        if unknown:
            names = ", ".join(sorted(nodes[n]["name"] for n in unknown))
            violations.append(Violation(name, None, "lineage_unknown", f"no compiled SQL to trace: {names}"))
            continue
        tier = _meta(node).get("classification")
        relation = relations[uid]
        for column, props in (node.get("columns") or {}).items():
            column_tier = _meta(props).get("classification")
            origins = relation.get(column) or frozenset()
            for origin in sorted(origins, key=lambda o: (o.relation, o.column)):
                source_tier, pii = source_cols.get(origin.relation, {}).get(origin.column, ("open", "none"))
                where = f"{origin.relation}.{origin.column}"
                if source_tier == "restricted" and pii != "none" and tier != "restricted":
                    violations.append(
                        Violation(
                            name, column, "unmasked_restricted_pii",
                            f"{tier} model exposes a value derived from restricted {pii} column {where} without a masking macro",
                        )
                    )  # fmt: skip
                elif column_tier in TIERS and RANK[source_tier] > RANK[column_tier]:
                    violations.append(
                        Violation(
                            name, column, "column_below_source",
                            f"classified {column_tier} but derived (unmasked) from {source_tier} column {where}",
                        )
                    )  # fmt: skip
    return violations


def grade_and_quasi_identifier_violations(manifest: Mapping[str, Any]) -> list[Violation]:
    """Rules 4 and 5: the grade vocabulary and the quasi-identifier declarations have their own modules
    (also used at publication); here they become build violations."""
    from citybrain.governance.grades import check_grades, grades_from_manifest
    from citybrain.privacy.reidentification import check_declarations

    found = [
        Violation(p.table, p.column, p.rule, p.message)
        for p in check_grades(grades_from_manifest(manifest).values())
    ]
    found += [Violation(p.table, None, p.rule, p.message) for p in check_declarations(manifest)]
    return found


def check_built(
    manifest: Mapping[str, Any],
    catalog,
    store: Path,
    compile_missing: Callable[[list[str]], Mapping[str, Any]] | None = None,
) -> list[Violation]:
    """The check after one ``dbt build`` step: every metadata rule, and the lineage rules for the pool
    models this build compiled. A Dagster step builds only part of the project, so the compiled SQL of
    upstream nodes built by earlier steps comes from ``store`` (JSON, unique id -> file checksum and
    compiled SQL, refreshed by every build; an entry counts only while the node's checksum is unchanged).
    What is still missing is compiled by ``compile_missing`` (node names -> a manifest) when given."""
    nodes = manifest.get("nodes", {})

    def fresh(entries: Mapping[str, Any]) -> dict[str, str]:
        return {
            uid: entry["sql"]
            for uid, entry in entries.items()
            if uid in nodes and entry.get("checksum") == nodes[uid].get("checksum", {}).get("checksum")
        }

    try:
        stored = json.loads(store.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        stored = {}

    def remember(source: Mapping[str, Any]):
        for uid, node in source.get("nodes", {}).items():
            if node.get("compiled_code") and uid in nodes:
                stored[uid] = {
                    "checksum": node.get("checksum", {}).get("checksum"),
                    "sql": node["compiled_code"],
                }

    remember(manifest)
    built = [uid for uid in pool_models(manifest) if nodes[uid].get("compiled_code")]
    compiled = fresh(stored)
    missing = [uid for uid in lineage_needs(manifest, built) if uid not in compiled]
    if missing and compile_missing is not None:
        remember(compile_missing(sorted(nodes[uid]["name"] for uid in missing)))
        compiled = fresh(stored)
    store.parent.mkdir(parents=True, exist_ok=True)
    partial = store.with_name(f"{store.name}.{os.getpid()}.tmp")
    partial.write_text(json.dumps(stored), encoding="utf-8")
    partial.replace(store)  # atomic: concurrent steps on other warehouses never read half a file
    return check_manifest(manifest, catalog, models=built, compiled=compiled)


def format_violations(violations: Iterable[Violation]) -> str:
    lines = [f"  - {v}" for v in violations]
    return f"{len(lines)} classification violation(s) in the pool:\n" + "\n".join(lines)


def check_project(target_path: str | None = None) -> list[Violation]:
    """``citybrain governance check``: ``dbt compile`` of the whole project into its own target path
    (against the configured warehouse, which compile only reads) and every rule over its manifest."""
    import subprocess
    import sys

    from citybrain import settings
    from citybrain.catalog import load_catalog

    project_dir = settings.REPO_ROOT / "dbt_project"
    target = Path(target_path or settings.home() / "governance" / "dbt_target")
    dbt = Path(sys.executable).with_name("dbt")
    env = {**os.environ}
    env.setdefault("CITYBRAIN_WAREHOUSE", str(settings.warehouse_path()))
    proc = subprocess.run(
        [str(dbt), "compile", "--profiles-dir", str(project_dir), "--project-dir", str(project_dir),
         "--target-path", str(target), "--log-path", str(target), "--quiet"],
        cwd=project_dir, env=env, capture_output=True, text=True,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"dbt compile failed:\n{proc.stdout}\n{proc.stderr}")
    manifest = json.loads((target / "manifest.json").read_text(encoding="utf-8"))
    return check_manifest(manifest, load_catalog())


def main(argv: list[str] | None = None) -> int:
    """Print the violations; exit status 1 when there are any."""
    violations = check_project()
    if violations:
        print(format_violations(violations))
        return 1
    print("pool classification: clean (every pool column classified, no unmasked restricted PII)")
    return 0
