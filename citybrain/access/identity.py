"""Who is acting on the published pool: the holder of a sharing token, or the machine's owner. Nothing else.

Two identities, and only two:

* a **sharing API token** (``--token``, ``$CITYBRAIN_SHARING_TOKEN``, ``citybrain://?token=…``): the
  account it belongs to reads only through its active grants (``citybrain.sharing``), audited under the
  account's name with each grant's id;
* the **local operator** (``--local-operator``, ``local_operator=True``): whoever runs the command on this
  machine with read access to the tier files. It reads every published tier — nothing more than opening
  the files with DuckDB would give — and is audited as ``operator:<OS login>``, a name taken from the OS,
  not from a flag or a variable.

A name on the command line (``--user``), ``CITYBRAIN_USER`` and a grants file named by ``CITYBRAIN_GRANTS``
used to decide who read what; a caller could claim any name and write their own grants (issue 21). They
are retired: given or set, they are refused with a message naming the replacement, so nobody believes they
act as someone they are not. This module is the access layer's half of identity; tokens and grants live
in ``citybrain.sharing``, one layer up.
"""

from __future__ import annotations

import getpass
import os

TOKEN_ENV = "CITYBRAIN_SHARING_TOKEN"
RETIRED_VARIABLES = ("CITYBRAIN_USER", "CITYBRAIN_GRANTS")
REPLACEMENT = (
    f"give a sharing API token (--token or ${TOKEN_ENV}; see docs/SHARING.md) or, as the machine's owner, "
    "use the local operator mode (--local-operator)"
)


class AccessDenied(PermissionError):
    """No identity, a retired way of claiming one, or an identity that may not do this."""


def os_login() -> str:
    """The OS account running this process (the only name the local operator mode trusts)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


def operator_identity() -> str:
    """How the local operator appears in the audit log: ``operator:<OS login>``."""
    return f"operator:{os_login()}"


def refuse_retired(user: str | None = None) -> None:
    """Raise AccessDenied if ``--user`` was given or a retired variable is set: they are no identity now."""
    if user:
        raise AccessDenied(f"a user name ({user!r}) is no identity any more: {REPLACEMENT}")
    for name in RETIRED_VARIABLES:
        if os.environ.get(name):
            raise AccessDenied(
                f"${name} is set, but it no longer names who you are or what you may read: unset it and {REPLACEMENT}"
            )


def token_from(explicit: str | None = None) -> str | None:
    """The token given on the command line or in the URL, else ``$CITYBRAIN_SHARING_TOKEN``."""
    return explicit or os.environ.get(TOKEN_ENV) or None
