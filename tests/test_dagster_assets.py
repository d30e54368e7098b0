"""The Dagster layer: definitions load, every asset is documented, in-process runs materialise and fail as they should."""

from __future__ import annotations

import duckdb
from dagster import AssetKey, AssetSelection, DagsterInstance, Definitions, define_asset_job, materialize

from assets.ingestion import build_ingestion_asset
from assets.resources import LandingZoneResource, WarehouseResource
from orchestration.definitions import build_definitions, defs
from tests.test_ingest_files import REGISTRY_ROW, egov_csv, registry_csv, write


def test_every_asset_has_description_owner_group_kinds(catalog):
    graph = defs.resolve_asset_graph()
    raw_keys = {AssetKey(["raw", f.id]) for f in catalog.feeds}
    assert raw_keys <= set(graph.get_all_asset_keys())
    for key in graph.get_all_asset_keys():  # external ones too: the tables the pipeline's steps write
        node = graph.get(key)
        assert node.description, key
        assert node.owners, key
        assert node.group_name, key
        assert node.kinds, key
    registry = graph.get(AssetKey(["raw", "household_registry"]))
    assert registry.owners == ["team:GA"] and registry.group_name == "public_security_bureau"
    assert {"duckdb", "csv"} <= set(registry.kinds)
    assert graph.get(AssetKey(["raw", "egov_applications"])).partitions_def is not None
    assert graph.get(AssetKey(["raw", "household_registry"])).partitions_def is None
    bookkeeping = [AssetKey(["raw", "ingestion_log"]), AssetKey(["raw", "quarantine"])]
    assert all(not graph.get(k).is_materializable for k in bookkeeping)
    # Groups are layers or departments, never one model each.
    snapshots = [k for k in graph.get_all_asset_keys() if k.path[-1].startswith("snap_")]
    assert snapshots and {graph.get(k).group_name for k in snapshots} == {"snapshots"}


def test_dbt_models_run_after_every_ingestion_asset(catalog):
    graph = defs.resolve_asset_graph()
    parents = graph.get(AssetKey(["stg_ingestion_log"])).parent_keys
    assert {AssetKey(["raw", f.id]) for f in catalog.feeds} <= parents


def _resources(lake):
    return {
        "warehouse": WarehouseResource(path=str(lake / "warehouse.duckdb")),
        "landing": LandingZoneResource(path=str(lake / "landing")),
    }


def test_materialize_records_row_counts_as_metadata(lake, catalog):
    write(
        lake / "landing", "egov/applications_20261120.csv", egov_csv(catalog, ["A1", "A2"]) + b"A3,too,few\n"
    )
    asset = build_ingestion_asset(catalog, catalog.feed("egov_applications"))
    result = materialize([asset], partition_key="2026-11-20", resources=_resources(lake))
    assert result.success
    (materialization,) = result.asset_materializations_for_node(asset.op.name)
    metadata = {k: v.value for k, v in materialization.metadata.items()}
    assert (
        metadata["rows_received"] == 3 and metadata["rows_loaded"] == 2 and metadata["rows_quarantined"] == 1
    )
    assert metadata["dagster/row_count"] == 2
    assert metadata["quarantined_by_reason"] == {"column_count_mismatch": 1}
    assert "egov/applications_20261120.csv" in metadata["deliveries"]
    con = duckdb.connect(str(lake / "warehouse.duckdb"), read_only=True)
    run_ids = {r[0] for r in con.execute("SELECT DISTINCT _batch_id FROM raw.egov_applications").fetchall()}
    con.close()
    assert run_ids == {result.run_id}  # _batch_id is the Dagster run id


def test_a_bad_file_fails_the_asset_naming_the_file(lake, catalog):
    write(lake / "landing", "egov/applications_20261120.csv", b"application_id\nA1\n")
    asset = build_ingestion_asset(catalog, catalog.feed("egov_applications"))
    result = materialize(
        [asset], partition_key="2026-11-20", resources=_resources(lake), raise_on_error=False
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.user_failure_data.description
    assert "egov/applications_20261120.csv" in message and "missing columns" in message


def test_nightly_job_over_a_partition_range_in_one_run(lake, catalog):
    """Partitioned and unpartitioned ingestion plus dbt in one run over two days (a small backfill)."""
    landing = lake / "landing"
    write(landing, "egov/applications_20261120.csv", egov_csv(catalog, ["A1"]))
    write(landing, "egov/applications_20261121.csv", egov_csv(catalog, ["B1", "B2"]))
    write(
        landing,
        "public_security/household_registry_20261121.csv",
        registry_csv([REGISTRY_ROW.format(id="330102199001011234", n=1)], catalog),
    )
    selection = AssetSelection.assets(
        AssetKey(["raw", "egov_applications"]),
        AssetKey(["raw", "household_registry"]),
        AssetKey(["stg_ingestion_log"]),
        AssetKey(["int_ingestion__feed_volumes"]),
    )
    test_defs = Definitions.merge(
        build_definitions(), Definitions(jobs=[define_asset_job("subset", selection=selection)])
    )
    tags = {
        "dagster/asset_partition_range_start": "2026-11-20",
        "dagster/asset_partition_range_end": "2026-11-21",
    }
    with DagsterInstance.ephemeral() as instance:
        result = test_defs.resolve_job_def("subset").execute_in_process(instance=instance, tags=tags)
    assert result.success
    materializations = [e.materialization for e in result.get_asset_materialization_events()]
    counts = {m.asset_key.to_user_string(): m.metadata.get("dagster/row_count") for m in materializations}
    assert counts["int_ingestion__feed_volumes"].value == 3 and counts["raw/household_registry"].value == 1
    assert counts["stg_ingestion_log"] is None  # a view: counting it would run it
    con = duckdb.connect(str(lake / "warehouse.duckdb"), read_only=True)
    try:
        assert con.execute(
            "SELECT _partition, count(*) FROM raw.egov_applications GROUP BY 1 ORDER BY 1"
        ).fetchall() == [
            ("2026-11-20", 1),
            ("2026-11-21", 2),
        ]
        volumes = con.execute(
            "SELECT feed_id, cast(partition_date AS varchar), rows_loaded FROM intermediate.int_ingestion__feed_volumes ORDER BY 1, 2"
        ).fetchall()
    finally:
        con.close()
    assert volumes == [
        ("egov_applications", "2026-11-20", 1),
        ("egov_applications", "2026-11-21", 2),
        ("household_registry", None, 1),
    ]
