"""Helpers for the sharing service tests: a resource catalog for the access lake's two published tables
(tests/access_lake.py), and the service's store on SQLite or on the local PostgreSQL (one schema per test)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

import pytest

from citybrain.resource_catalog.build import DataItem, Resource, ResourceCatalog
from citybrain.resource_catalog.export import write_json
from citybrain.sharing.resources import ShareableResource, load_resources
from citybrain.sharing.store import Store

PG_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
AREA_CODE = "330100-SJJ-00001"  # pool.dim_area, open tier, provided by SJJ
VISIT_CODE = "330100-WJW-00002"  # pool.fct_visit, conditional tier, provided by WJW (health commission)


def _resource(code: str, table: str, tier: str, provider: str, columns: list[str]) -> Resource:
    defaults = {f.name: "" for f in fields(Resource) if f.type == "str"}
    items = [DataItem(c, c, "", "", "VARCHAR", tier) for c in columns]
    return Resource(
        **{**defaults, "code": code, "key": f"pool:{table}", "kind": "pool", "table": f"pool.{table}",
           "classification": tier, "provider_code": provider, "name": table},
        source_providers=[], last_updated=None, row_count=None, quality_score=None, version=None, items=items,
    )  # fmt: skip


def write_catalog(path: Path) -> dict[str, ShareableResource]:
    catalog = ResourceCatalog(
        city_name="测试市",
        city_name_en="Test",
        division_code="330100",
        generated_at="2026-12-01T00:00:00Z",
        sources=[],
        resources=[
            _resource(AREA_CODE, "dim_area", "open", "SJJ", ["area_code", "area_name", "residents"]),
            _resource(
                VISIT_CODE, "fct_visit", "conditional", "WJW", ["person_pseudonym", "area_code", "visit_no"]
            ),
        ],
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(catalog, path)
    return load_resources(path)


@contextlib.contextmanager
def sharing_store(backend: str, tmp_path: Path) -> Iterator[Store]:
    """A fresh store: a SQLite file, or a schema of its own in the local PostgreSQL (dropped afterwards)."""
    if backend == "sqlite":
        store = Store(f"sqlite:///{tmp_path / 'sharing.db'}").create_all()
        yield store
        store.engine.dispose()
        return
    import sqlalchemy

    engine = sqlalchemy.create_engine(PG_URL)
    try:
        with engine.connect():
            pass
    except sqlalchemy.exc.OperationalError as error:
        engine.dispose()
        pytest.skip(f"PostgreSQL not reachable at 127.0.0.1:5432: {str(error).splitlines()[0]}")
    schema = f"sharing_{uuid.uuid4().hex[:10]}"
    with engine.begin() as con:
        con.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield Store(PG_URL, schema=schema, engine=engine).create_all()
    finally:
        with engine.begin() as con:
            con.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def token_for(
    store: Store,
    name: str,
    *,
    role: str = "consumer",
    grants: list[dict] = (),
    expires_at=None,
) -> tuple[str, int]:
    """An account (``role``) with ``grants`` (create_grant keyword arguments, ending in 30 days unless
    they say otherwise) and a token for it: (the token's secret, the account's id)."""
    from datetime import timedelta

    from citybrain.sharing import accounts, tokens
    from citybrain.sharing import grants as sharing_grants
    from citybrain.sharing.store import utcnow

    account = accounts.create_account(store, name, "CJJ", role, "a long passphrase", by="test")
    for grant in grants:
        sharing_grants.create_grant(
            store, account_id=account.id, by="test", **{"ends_at": utcnow() + timedelta(days=30), **grant}
        )
    issued = tokens.issue_token(store, account, "test", expires_at=expires_at, by="test")
    return issued.secret, account.id
