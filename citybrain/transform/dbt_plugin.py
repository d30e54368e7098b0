"""dbt-duckdb plugin: registers the domain functions of ``udfs.py`` on every dbt connection.

Enabled in ``dbt_project/profiles.yml`` (``plugins: [{module: citybrain.transform.dbt_plugin}]``). It also
applies ``citybrain.settings.duckdb_config()`` ($CITYBRAIN_DUCKDB_MEMORY_LIMIT, $CITYBRAIN_DUCKDB_TEMP_DIR) to
the connection: the profile's ``settings:`` cannot leave a setting at DuckDB's default when the variable is
unset (``memory_limit`` takes no percentage and an empty ``temp_directory`` turns spilling off).
"""

from dbt.adapters.duckdb.plugins import BasePlugin

from citybrain.privacy import small_cells
from citybrain.settings import duckdb_config
from citybrain.transform import udfs


class Plugin(BasePlugin):
    def configure_connection(self, conn):
        for name, value in duckdb_config().items():
            quoted = value.replace("'", "''")
            conn.execute(f"SET {name} = '{quoted}'")
        udfs.register(conn)
        small_cells.register(conn)  # cb_small_cell_k(): k of catalog/privacy.yaml

    def configure_cursor(self, cursor):
        # Python UDFs are shared with the connection's cursors; temporary SQL macros are not.
        udfs.register_sql_macros(cursor)
        small_cells.register(cursor)
