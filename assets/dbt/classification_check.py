"""The pool's classification rules (docs/GOVERNANCE.md), checked on the manifest each dbt build wrote."""

from dagster import Failure
from dagster_dbt import DbtCliResource

from assets.dbt_project import citybrain_dbt_project
from citybrain.catalog import load_catalog
from citybrain.governance import classification
from citybrain.lineage.columns import COMPILED_STORE

GOVERNANCE_STORE = COMPILED_STORE  # compiled SQL of earlier steps, for the lineage check (and the catalog)


def governance_store_path():
    return citybrain_dbt_project.project_dir / "target" / GOVERNANCE_STORE


def check_classification(dbt: DbtCliResource, manifest: dict) -> None:
    """Fail the step when the pool just built breaks a classification rule (docs/GOVERNANCE.md): raised
    before the step's outputs are yielded, so nothing downstream (quality gate, publication) runs."""

    def compile_missing(names: list[str]) -> dict:
        return dbt.cli(["compile", "--select", *names]).wait().get_artifact("manifest.json")

    violations = classification.check_built(
        manifest, load_catalog(), governance_store_path(), compile_missing
    )
    if violations:
        raise Failure(
            description=classification.format_violations(violations),
            metadata={"violations": [str(v) for v in violations]},
        )
