"""``social.plaza.*``: Plaza's own methods on a hosting service (see src/plaza/lexicons/)."""

from __future__ import annotations

import time
from typing import Any

from plaza.services.pds.auth import Auth
from plaza.services.pds.components import Call
from plaza.services.pds.errors import InvalidRequestError
from plaza.services.pds.sequencer import iso_time
from plaza.services.pds.xrpc import Method, query


async def get_usage(call: Call) -> dict[str, Any]:
    ctx = call.pds
    did = call.param("did", required=False)
    limit = call.int_param("limit", 100, 1, 1000)
    cursor = call.param("cursor", required=False)
    rows = ctx.meter.usage(cursor, limit, did)
    if did is not None and not rows:
        raise InvalidRequestError(f"No account {did} on this host", code="AccountNotFound")
    out: dict[str, Any] = {
        "service": ctx.settings.did,
        "generatedAt": iso_time(time.time()),
        "accounts": [
            {
                "did": r.did,
                "records": r.records,
                "repoBytes": r.repo_bytes,
                "blobBytes": r.blob_bytes,
                "requests": r.requests,
                "egressBytes": r.egress_bytes,
            }
            for r in rows
        ],
    }
    if did is None and len(rows) == limit:
        out["cursor"] = rows[-1].did
    return out


METHODS: list[Method] = [
    query("social.plaza.provider.getUsage", get_usage, Auth.ADMIN),
]
