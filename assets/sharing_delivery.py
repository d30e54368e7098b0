"""The table delivery asset (库表): after each publication, push every active table grant's slice into the
consumer's database (citybrain/sharing/delivery.py, docs/SHARING.md).

Every grant is tried (a failing consumer database does not stop the others); then, if any delivery failed,
the asset fails with the failures in its metadata, so the run shows red, the run-failure alert fires and
an operator sees which grant, which target and what the database said. Nothing of a failed delivery was
applied and the next run tries it again. Without a sharing database, or without table grants, the asset
is a fast no-op.
"""

from dagster import AssetExecutionContext, AssetKey, Failure, MaterializeResult, MetadataValue, asset

from assets.resources import PublicationResource


@asset(
    key=AssetKey(["sharing_delivery"]),
    deps=[AssetKey(["pool_publication"])],
    group_name="publication",
    owners=["team:data_engineering"],
    kinds={"postgres", "mysql"},
    description=(
        "库表交付 — Table delivery: pushes the granted slice (columns, rows) of the live published version "
        "into each table grant's consumer database (PostgreSQL, MySQL/MariaDB): daily facts by changed day, "
        "other tables whole, one transaction per table, retried; fails after trying all if any failed."
    ),
)
def sharing_delivery(context: AssetExecutionContext, publication: PublicationResource) -> MaterializeResult:
    from citybrain.sharing.delivery import deliver_all, existing_store

    store = existing_store()
    if store is None:
        context.log.info("no sharing database: nothing to deliver")
        return MaterializeResult(metadata=_metadata([]))
    try:
        results = deliver_all(store, directory=publication.resolved_directory())
    finally:
        store.engine.dispose()
    for r in results:
        line = f"grant {r.grant_id}: {r.status}, {r.rows} rows to {r.target}"
        if r.status == "failed":
            context.log.error(f"{line} after {r.attempts} attempt(s): {r.error}")
        else:
            context.log.info(line)
    metadata = _metadata(results)
    failed = [r for r in results if r.status == "failed"]
    if failed:
        raise Failure(
            description=f"table delivery failed for {len(failed)} of {len(results)} grants (nothing of them "
            "was applied; the next run tries again): "
            + "; ".join(f"grant {r.grant_id}: {r.error}" for r in failed),
            metadata=metadata,
        )
    return MaterializeResult(metadata=metadata)


def _metadata(results) -> dict:
    rows = "\n".join(
        f"| {r.grant_id} | {r.status} | {r.target or ''} | {_days(r)} | {r.rows:,} | {r.error or ''} |"
        for r in results
    )
    return {
        "grants": len(results),
        "grants_delivered": sum(r.status == "delivered" for r in results),
        "grants_unchanged": sum(r.status == "unchanged" for r in results),
        "failures": sum(r.status == "failed" for r in results),
        "rows_delivered": sum(r.rows for r in results),
        "deliveries": MetadataValue.md(
            "| grant | status | target | days | rows | error |\n|---|---|---|---|---|---|\n" + rows
        ),
    }


def _days(result) -> str:
    if result.status != "delivered" and not result.days:
        return ""
    return "whole table" if result.days is None else ", ".join(result.days)
