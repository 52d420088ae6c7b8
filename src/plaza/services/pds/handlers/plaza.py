"""``social.plaza.*``: Plaza's own methods on a hosting service (see src/plaza/lexicons/)."""

from __future__ import annotations

import time
from typing import Any

from plaza.services.pds.errors import InvalidRequestError
from plaza.services.pds.sequencer import iso_time
from plaza.services.pds.xrpc import Auth, Method, XrpcCall, query


async def get_usage(call: XrpcCall) -> dict[str, Any]:
    ctx = call.ctx
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
