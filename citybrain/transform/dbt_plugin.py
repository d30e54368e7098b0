"""dbt-duckdb plugin: registers the domain functions of ``udfs.py`` on every dbt connection.

Enabled in ``dbt_project/profiles.yml`` (``plugins: [{module: citybrain.transform.dbt_plugin}]``).
"""

from dbt.adapters.duckdb.plugins import BasePlugin

from citybrain.transform import udfs


class Plugin(BasePlugin):
    def configure_connection(self, conn):
        udfs.register(conn)

    def configure_cursor(self, cursor):
        # Python UDFs are shared with the connection's cursors; temporary SQL macros are not.
        udfs.register_sql_macros(cursor)
