"""``citybrain audit query``: auditors read the audit log with SQL, read-only, through the same guard.

Who may is decided one layer up (``citybrain.sharing.session.read_audit_log``: an account with the auditor
role, by its token, or the local operator); this module only runs the query safely.

The log is loaded into an in-memory table ``audit`` of a locked-down session (no file access, locked
configuration), so the query can neither change the log nor reach anything else. The audit query itself
is audited.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from citybrain.access import audit
from citybrain.access.query import LOCKDOWN
from citybrain.access.sql_guard import QueryRejected, check_query

AUDIT_SCHEMA = pa.schema(
    [
        ("seq", pa.int64()),
        ("at", pa.string()),
        ("user", pa.string()),
        ("os_user", pa.string()),
        ("host", pa.string()),
        ("pid", pa.int64()),
        ("via", pa.string()),
        ("action", pa.string()),
        ("outcome", pa.string()),
        ("tiers", pa.list_(pa.string())),
        ("tables", pa.list_(pa.string())),
        ("sql", pa.string()),
        ("rows", pa.int64()),
        ("run_id", pa.string()),
        ("target", pa.string()),
        ("detail", pa.string()),
        ("application_id", pa.int64()),
        ("grant_id", pa.int64()),
        ("prev", pa.string()),
        ("hash", pa.string()),
    ]
)


def query_audit_log(sql: str, *, reader: str, via: str = "cli") -> pa.Table:
    """Run ``sql`` over the log for ``reader``, who has been authorised already: an auditor's sharing token
    or the local operator (``citybrain.sharing.session.read_audit_log`` decides, and audits a refusal)."""
    user = reader
    try:
        check_query(sql, {"main.audit"}, default_schema="main")
    except QueryRejected as error:
        audit.append("audit_query", outcome="rejected", user=user, via=via, sql=sql, detail=str(error))
        raise
    records = audit.read_records()
    table = pa.Table.from_pylist(
        [{name: record.get(name) for name in AUDIT_SCHEMA.names} for record in records], schema=AUDIT_SCHEMA
    )
    with duckdb.connect(":memory:") as con:
        con.register("audit_records", table)
        con.execute(
            'CREATE TABLE audit AS SELECT * REPLACE ("at"::TIMESTAMPTZ AS "at") FROM audit_records ORDER BY seq'
        )
        con.unregister("audit_records")
        for statement in LOCKDOWN:
            con.execute(statement)
        result = con.execute(sql).fetch_arrow_table()
    audit.append(
        "audit_query", outcome="ok", user=user, via=via, sql=sql, tables=["audit"], rows=result.num_rows
    )
    return result
