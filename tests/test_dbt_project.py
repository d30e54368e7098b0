"""dbt discipline, checked on the parsed manifest: sources match the catalog, the project parses with
warnings as errors, every pool model has an enforced contract and bilingual descriptions, every model
is tested."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from citybrain.settings import REPO_ROOT

DBT_DIR = REPO_ROOT / "dbt_project"


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> dict:
    target = tmp_path_factory.mktemp("dbt_target")
    dbt = Path(sys.executable).with_name("dbt")
    proc = subprocess.run(
        [str(dbt), "--warn-error", "parse", "--profiles-dir", ".", "--target-path", str(target)],
        cwd=DBT_DIR,
        capture_output=True,
        text=True,
        env={
            "PATH": f"{dbt.parent}:/usr/bin:/bin",
            "HOME": str(target),
            "CITYBRAIN_WAREHOUSE": str(target / "w.duckdb"),
        },
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads((target / "manifest.json").read_text())


def models(manifest) -> dict[str, dict]:
    return {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model"}


def test_a_source_for_every_catalog_feed(manifest, catalog):
    raw = {s["name"] for s in manifest["sources"].values() if s["source_name"] == "raw"}
    assert {f.id for f in catalog.feeds} <= raw
    for source in manifest["sources"].values():
        if source["source_name"] == "raw" and source["name"] in {f.id for f in catalog.feeds}:
            assert source["loaded_at_field"] == "_loaded_at"
            assert source["freshness"]["warn_after"]["count"], source["name"]


def test_pool_models_have_contracts_and_bilingual_descriptions(manifest):
    pool = {name: m for name, m in models(manifest).items() if m["schema"] == "pool"}
    assert "dim_district" in pool
    for name, model in pool.items():
        assert model["contract"]["enforced"], name
        assert " — " in model["description"], f"{name}: description should read '中文 — English'"
        assert model["columns"], name
        for column in model["columns"].values():
            assert column.get("data_type"), f"{name}.{column['name']} has no data_type"
            assert " — " in column["description"], f"{name}.{column['name']}: '中文 — English' description"


def test_every_model_is_tested(manifest):
    tested = set()
    for node in manifest["nodes"].values():
        if node["resource_type"] == "test":
            tested.update(d.split(".")[-1] for d in node["depends_on"]["nodes"] if d.startswith("model."))
    untested = sorted(
        name for name, m in models(manifest).items() if m["schema"] == "pool" and name not in tested
    )
    assert not untested, f"pool models without tests: {untested}"


def test_the_dbt_steps_follow_each_other(manifest):
    """The three dbt steps (assets/dbt/models.py) run in order: models, daily facts (tag daily), indicators
    (tag indicator). A model of an earlier step that reads a model of a later one makes Dagster split the
    earlier step in two around the later one, and the split step then runs tests of tables not built yet."""
    nodes = manifest["nodes"]
    step = {
        uid: 2 if "indicator" in node["tags"] else 1 if "daily" in node["tags"] else 0
        for uid, node in nodes.items()
        if node["resource_type"] in ("model", "snapshot")
    }
    backwards = sorted(
        f"{nodes[uid]['name']} reads {nodes[parent]['name']}"
        for uid, own_step in step.items()
        for parent in nodes[uid]["depends_on"]["nodes"]
        if step.get(parent, 0) > own_step
    )
    assert backwards == []
