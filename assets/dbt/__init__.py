"""The dbt models as Dagster assets, one job per module:

- ``models``: the three dbt steps (``@dbt_assets``) and which of them the project needs;
- ``translator``: how dbt nodes become asset keys, groups and owners;
- ``build``: one ``dbt build`` of a step, under the warehouse lock;
- ``process_env``: what the dbt process reads from its environment (warehouse path, the run's days);
- ``parse_state``: dbt's partial-parse state kept per warehouse, so steps do not re-parse the project;
- ``spark``: the Parquet lake synced before, and the pool brought back after, a build on Spark;
- ``classification_check``: the pool's classification rules, checked on the manifest a build wrote;
- ``column_lineage`` and ``row_counts``: metadata added to the outputs;
- ``outputs``: which models a build's events say were built.

Nothing here is imported by this package's ``__init__``: the dbt steps parse the manifest when
``assets.dbt.models`` is imported, and the other modules do not need that.
"""
