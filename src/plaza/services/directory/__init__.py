"""Plaza's PLC-compatible DID directory: the did:plc HTTP API over a persistent log.

``create_app(DirectorySettings(...))`` builds the ASGI app; :class:`DirectoryStore` is
the log it serves, usable on its own. The protocol rules come from
:mod:`plaza.atproto.plc`.
"""

from plaza.services.directory.app import (
    DEFAULT_PORT,
    DirectorySettings,
    create_app,
    utc_now,
)
from plaza.services.directory.handles import (
    DEFAULT_HANDLE_DOMAINS,
    HandleClaims,
    HandleNotFoundError,
    HandleTakenError,
)
from plaza.services.directory.store import MAX_EXPORT_COUNT, DirectoryStore, ExportedOp

__all__ = [
    "DEFAULT_HANDLE_DOMAINS",
    "DEFAULT_PORT",
    "MAX_EXPORT_COUNT",
    "DirectorySettings",
    "DirectoryStore",
    "ExportedOp",
    "HandleClaims",
    "HandleNotFoundError",
    "HandleTakenError",
    "create_app",
    "utc_now",
]
