"""``com.atproto.identity.*``: handles and the PLC operations of account migration."""

from __future__ import annotations

import time
from typing import Any

from plaza.atproto.errors import AtprotoError
from plaza.atproto.plc import (
    ATPROTO_KEY,
    ATPROTO_PDS,
    ATPROTO_PDS_TYPE,
    PlcOperation,
    Service,
    create_update,
    parse_operation,
    verify_operation_signature,
)
from plaza.services.pds.accounts import PLC_PURPOSE
from plaza.services.pds.auth import Auth
from plaza.services.pds.components import Call
from plaza.services.pds.errors import InvalidRequestError
from plaza.services.pds.xrpc import Method, procedure, query


async def resolve_handle(call: Call) -> dict[str, Any]:
    """Both ways (:mod:`plaza.services.pds.handles`): the network's handles through the
    directory, so every PDS of the network gives the same answer."""
    did = await call.pds.handles.resolve(call.req_param("handle").strip())
    if did is None:
        raise InvalidRequestError("Unable to resolve handle", code="HandleNotFound")
    return {"did": did}


async def update_handle(call: Call) -> None:
    assert call.creds is not None and call.creds.did is not None
    ctx = call.pds
    acct = ctx.accounts.require(call.creds.did)
    handle = await ctx.accounts.check_handle(call.str_field("handle"), for_did=acct.did)
    if handle == acct.handle:
        return
    data = await ctx.identity.data(acct.did, refresh=True)
    if ctx.secrets.rotation_key.did_key() in data.rotation_keys:
        prev = await ctx.identity.last_operation(acct.did)
        if not isinstance(prev, PlcOperation):
            raise InvalidRequestError("The DID's last operation cannot be updated")
        op = create_update(prev, ctx.secrets.rotation_key, handle=handle)
        await ctx.identity.submit(acct.did, op)
    ctx.accounts.update_handle(acct, handle)


async def get_recommended_did_credentials(call: Call) -> dict[str, Any]:
    assert call.creds is not None and call.creds.did is not None
    ctx = call.pds
    acct = ctx.accounts.require(call.creds.did)
    return {
        "rotationKeys": [ctx.secrets.rotation_key.did_key()],
        "alsoKnownAs": [f"at://{acct.handle}"],
        "verificationMethods": {ATPROTO_KEY: acct.key.did_key()},
        "services": {
            ATPROTO_PDS: {"type": ATPROTO_PDS_TYPE, "endpoint": ctx.settings.public_url},
        },
    }


async def request_plc_operation_signature(call: Call) -> None:
    assert call.creds is not None and call.creds.did is not None
    acct = call.pds.accounts.require(call.creds.did)
    call.pds.accounts.send_token(acct, PLC_PURPOSE)


def _str_list(value: Any, name: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidRequestError(f"{name} must be a list of strings")
    return value


async def sign_plc_operation(call: Call) -> dict[str, Any]:
    assert call.creds is not None and call.creds.did is not None
    ctx = call.pds
    acct = ctx.accounts.require(call.creds.did)
    token = call.opt_str("token")
    ctx.accounts.check_token(acct.did, PLC_PURPOSE, token)
    prev = await ctx.identity.last_operation(acct.did)
    if not isinstance(prev, PlcOperation):
        raise InvalidRequestError("The DID's last operation cannot be updated")
    body = call.body if isinstance(call.body, dict) else {}
    methods = body.get("verificationMethods")
    services = body.get("services")
    if methods is not None and (
        not isinstance(methods, dict) or not all(isinstance(v, str) for v in methods.values())
    ):
        raise InvalidRequestError("verificationMethods must map names to did:keys")
    svc: dict[str, Service] | None = None
    if services is not None:
        if not isinstance(services, dict):
            raise InvalidRequestError("services must be an object")
        if not all(
            isinstance(v, dict)
            and isinstance(v.get("type"), str)
            and isinstance(v.get("endpoint"), str)
            for v in services.values()
        ):
            raise InvalidRequestError("each service needs a type and an endpoint")
        svc = {str(k): Service(v["type"], v["endpoint"]) for k, v in services.items()}
    try:
        op = create_update(
            prev,
            ctx.secrets.rotation_key,
            rotation_keys=_str_list(body.get("rotationKeys"), "rotationKeys"),
            also_known_as=_str_list(body.get("alsoKnownAs"), "alsoKnownAs"),
            verification_methods=methods,
            services=svc,
        )
    except AtprotoError as exc:
        raise InvalidRequestError(f"Cannot sign this operation: {exc.message}") from exc
    # Spent only now: a request refused above leaves the member's token usable.
    ctx.accounts.consume_token(acct.did, PLC_PURPOSE, token)
    return {"operation": op.to_json()}


async def submit_plc_operation(call: Call) -> None:
    assert call.creds is not None and call.creds.did is not None
    ctx = call.pds
    acct = ctx.accounts.require(call.creds.did)
    raw = call.field("operation", dict)
    try:
        op = parse_operation(raw)
    except AtprotoError as exc:
        raise InvalidRequestError(f"Invalid operation: {exc.message}") from exc
    if not isinstance(op, PlcOperation):
        raise InvalidRequestError("Only plc_operation may be submitted here")
    if ctx.secrets.rotation_key.did_key() not in op.rotation_keys:
        raise InvalidRequestError("Rotation keys do not include this server's rotation key")
    if op.verification_methods.get(ATPROTO_KEY) != acct.key.did_key():
        raise InvalidRequestError("Incorrect signing key")
    pds = op.services.get(ATPROTO_PDS)
    if pds is None or pds.type != ATPROTO_PDS_TYPE:
        raise InvalidRequestError("Missing or incorrect atproto_pds service")
    if pds.endpoint.rstrip("/") != ctx.settings.public_url.rstrip("/"):
        raise InvalidRequestError("Incorrect endpoint on atproto_pds service")
    if f"at://{acct.handle}" not in op.also_known_as:
        raise InvalidRequestError("Incorrect handle in alsoKnownAs")
    data = await ctx.identity.data(acct.did, refresh=True)
    try:
        verify_operation_signature(op, data.rotation_keys)
    except AtprotoError as exc:
        raise InvalidRequestError(
            f"Operation is not signed by a rotation key: {exc.message}",
        ) from exc
    await ctx.identity.submit(acct.did, op)
    now = time.time()
    with ctx.store.transaction():
        event = ctx.sequencer.identity(acct.did, acct.handle, now)
    ctx.sequencer.publish([event])


METHODS: list[Method] = [
    query("com.atproto.identity.resolveHandle", resolve_handle),
    procedure("com.atproto.identity.updateHandle", update_handle, Auth.ACCESS),
    query(
        "com.atproto.identity.getRecommendedDidCredentials",
        get_recommended_did_credentials,
        Auth.ACCESS,
    ),
    procedure(
        "com.atproto.identity.requestPlcOperationSignature",
        request_plc_operation_signature,
        Auth.FULL,
        body="none",
    ),
    procedure("com.atproto.identity.signPlcOperation", sign_plc_operation, Auth.FULL),
    procedure("com.atproto.identity.submitPlcOperation", submit_plc_operation, Auth.FULL),
]
