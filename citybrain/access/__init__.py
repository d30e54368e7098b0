"""The published pool's access layer: the SQL guard, the locked-down engine, the audit log, identity.

Who reads is a sharing token's account (``citybrain.sharing.session``: ``connect(token=...)``,
``read_sql``, ``engine`` and the SQLAlchemy URL ``citybrain://?token=…``, all enforcing the token's grants)
or, for the machine's owner, the local operator: ``citybrain.access.connect(local_operator=True)`` opens
every published tier, audited as ``operator:<OS login>`` (``identity``). ``--user`` / ``CITYBRAIN_USER`` /
``CITYBRAIN_GRANTS`` are retired (issue 21). The CLI (`citybrain query`, `citybrain audit …`) is
``citybrain/sharing/query_cli.py``.
"""

from __future__ import annotations

from citybrain.access.identity import AccessDenied
from citybrain.access.query import Session, TierNotPublished, connect
from citybrain.access.sql_guard import QueryRejected

__all__ = ["AccessDenied", "QueryRejected", "Session", "TierNotPublished", "connect"]
