"""Which dbt nodes a build's events say were built (the ``unique_id`` dagster-dbt puts on each output)."""

from dagster import Output


def unique_id_of(event) -> str | None:
    """The dbt unique id of an output event; None for any other event."""
    return (
        event.metadata["unique_id"].value
        if isinstance(event, Output) and "unique_id" in event.metadata
        else None
    )


def built_unique_ids(events) -> list[str]:
    return [unique_id for unique_id in map(unique_id_of, events) if unique_id]
