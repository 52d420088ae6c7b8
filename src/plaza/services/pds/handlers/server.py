"""``com.atproto.server.*``: the server's description, accounts, sessions, app passwords."""

from __future__ import annotations

import re
import secrets
import time
from contextlib import AbstractContextManager
from typing import Any

from plaza.atproto import syntax
from plaza.atproto.errors import AtprotoError
from plaza.services.pds import jwt
from plaza.services.pds.accounts import DELETE_PURPOSE
from plaza.services.pds.auth import Auth
from plaza.services.pds.components import Call
from plaza.services.pds.errors import (
    ForbiddenError,
    InvalidRequestError,
    RepoNotFoundError,
)
from plaza.services.pds.store import ACTIVE, DEACTIVATED
from plaza.services.pds.xrpc import Method, is_ascii_digits, procedure, query

PRIVILEGED_LXMS = frozenset(
    {
        "com.atproto.server.createAccount",
        "com.atproto.identity.requestPlcOperationSignature",
        "com.atproto.identity.signPlcOperation",
        "com.atproto.server.deleteAccount",
    }
)


def _session(acct_view: dict[str, Any], access: str, refresh: str) -> dict[str, Any]:
    return {"accessJwt": access, "refreshJwt": refresh, **acct_view}


async def describe_server(call: Call) -> dict[str, Any]:
    s = call.pds.settings
    return {
        "did": s.did,
        "availableUserDomains": list(s.user_domains),
        "inviteCodeRequired": s.invite_code_required,
        "phoneVerificationRequired": False,
        "links": {},
        "contact": {},
    }


async def create_account(call: Call) -> dict[str, Any]:
    ctx = call.pds
    ctx.limiter.check("create_account", call.client_ip)
    did = call.opt_str("did")
    if call.creds is not None and call.creds.kind != "service":
        raise ForbiddenError("createAccount takes no session; for an existing DID, a service token")
    if call.creds is not None and did is None:
        raise InvalidRequestError("A service token was given but no did")
    plc_op = call.field("plcOp", dict, required=False)
    if plc_op is not None and (did is None or call.creds is not None):
        raise InvalidRequestError("plcOp comes with a did and without a service token")
    acct, tokens = await ctx.accounts.create(
        handle=call.str_field("handle"),
        email=call.opt_str("email"),
        password=call.str_field("password"),
        did=did,
        recovery_key=call.opt_str("recoveryKey"),
        service_creds=call.creds,
        plc_op=plc_op,
    )
    call.account_did = acct.did
    out: dict[str, Any] = {
        "accessJwt": tokens.access_jwt,
        "refreshJwt": tokens.refresh_jwt,
        "handle": acct.handle,
        "did": acct.did,
    }
    doc = await ctx.identity.document(acct.did)
    if doc is not None:
        out["didDoc"] = doc
    return out


async def reserve_signing_key(call: Call) -> dict[str, Any]:
    """A signing key this host keeps for an account to come (see
    :mod:`plaza.services.pds.reservations`); rate-limited per client address."""
    ctx = call.pds
    ctx.limiter.check("reserve_key", call.client_ip)
    did = call.opt_str("did")
    if did is not None:
        try:
            syntax.validate_did(did)
        except AtprotoError as exc:
            raise InvalidRequestError(f"did is not a DID: {exc.message}") from exc
    return {"signingKey": await ctx.reservations.reserve(did)}


def _password_attempt(call: Call, identifier: str) -> AbstractContextManager[None]:
    """Around one password check for ``identifier``: counts the attempt against the
    client's address (:class:`RateLimitedError` past ``login_ip_limit``), and backs off
    failures per address and account (:mod:`plaza.services.pds.throttle`) — by DID, so
    its handle, DID and email share one record, or by the identifier when it names no
    account.

    The address is the connection's peer, or the client a trusted proxy names
    (``plaza serve pds --trusted-proxy``); without one, every client behind a proxy
    shares the proxy's address.
    """
    ctx = call.pds
    ctx.limiter.check("login_ip", call.client_ip)
    acct = ctx.accounts.lookup(identifier)
    return ctx.passwords.attempt(call.client_ip, acct.did if acct is not None else identifier)


async def create_session(call: Call) -> dict[str, Any]:
    ctx = call.pds
    identifier = call.str_field("identifier").strip().lower()
    password = call.str_field("password")
    with _password_attempt(call, identifier):
        acct, tokens = await ctx.accounts.login(identifier, password)
    call.account_did = acct.did
    return _session(await ctx.accounts.session_view(acct), tokens.access_jwt, tokens.refresh_jwt)


async def refresh_session(call: Call) -> dict[str, Any]:
    assert call.creds is not None
    acct, tokens = call.pds.accounts.refresh(call.creds)
    view = await call.pds.accounts.session_view(acct)
    return _session(view, tokens.access_jwt, tokens.refresh_jwt)


async def get_session(call: Call) -> dict[str, Any]:
    assert call.creds is not None and call.creds.did is not None
    return await call.pds.accounts.session_view(call.pds.accounts.require(call.creds.did))


async def delete_session(call: Call) -> None:
    assert call.creds is not None
    call.pds.accounts.logout(call.creds)


async def create_app_password(call: Call) -> dict[str, Any]:
    assert call.creds is not None and call.creds.did is not None
    privileged = bool(call.field("privileged", bool, required=False))
    return await call.pds.accounts.create_app_password(
        call.creds.did, call.str_field("name"), privileged
    )


async def list_app_passwords(call: Call) -> dict[str, Any]:
    assert call.creds is not None and call.creds.did is not None
    rows = call.pds.store.list_app_passwords(call.creds.did)
    return {
        "passwords": [
            {"name": r.name, "createdAt": r.created_at, "privileged": r.privileged} for r in rows
        ]
    }


async def revoke_app_password(call: Call) -> None:
    assert call.creds is not None and call.creds.did is not None
    call.pds.accounts.revoke_app_password(call.creds.did, call.str_field("name"))


async def check_account_status(call: Call) -> dict[str, Any]:
    assert call.creds is not None and call.creds.did is not None
    ctx = call.pds
    acct = ctx.accounts.require(call.creds.did)
    root = ctx.store.get_root(acct.did)
    expected, imported = ctx.store.blob_counts(acct.did)
    valid_did = await ctx.repos.did_points_here(acct)
    return {
        "activated": acct.active,
        "validDid": valid_did,
        "repoCommit": ctx.repos.cid_str(root.commit_cid) if root else None,
        "repoRev": root.rev if root else None,
        "repoBlocks": ctx.store.count_blocks(acct.did),
        "indexedRecords": ctx.store.count_records(acct.did),
        "privateStateValues": 0,
        "expectedBlobs": expected,
        "importedBlobs": imported,
    }


async def activate_account(call: Call) -> None:
    assert call.creds is not None and call.creds.did is not None
    ctx = call.pds
    acct = ctx.accounts.require(call.creds.did)
    if acct.active:
        return
    if not await ctx.repos.did_points_here(acct, refresh=True):
        raise InvalidRequestError(
            "The DID document does not name this server and this account's signing key yet; "
            "submit the PLC operation first"
        )
    if ctx.store.get_root(acct.did) is None:
        raise InvalidRequestError("The account has no repository yet; import it first")
    async with ctx.repos.lock(acct.did):
        ctx.accounts.set_status(acct, ACTIVE)


async def deactivate_account(call: Call) -> None:
    assert call.creds is not None and call.creds.did is not None
    acct = call.pds.accounts.require(call.creds.did)
    delete_after = call.opt_str("deleteAfter")
    if delete_after is not None and not syntax.is_valid_datetime(delete_after):
        raise InvalidRequestError("deleteAfter must be an atproto datetime")
    if acct.status == DEACTIVATED:
        return
    async with call.pds.repos.lock(acct.did):
        call.pds.accounts.set_status(acct, DEACTIVATED, delete_after)


async def request_account_delete(call: Call) -> None:
    assert call.creds is not None and call.creds.did is not None
    call.pds.accounts.send_token(call.pds.accounts.require(call.creds.did), DELETE_PURPOSE)


async def delete_account(call: Call) -> None:
    did = call.str_field("did")
    password = call.str_field("password")
    token = call.opt_str("token")
    with _password_attempt(call, did):  # it checks a password too
        async with call.pds.repos.lock(did):
            await call.pds.accounts.delete(did, password, token)


def _service_audience(aud: str) -> str:
    """A DID, optionally with a ``#service`` fragment, as an inter-service ``aud``."""
    did, hash_, service = aud.partition("#")
    try:
        syntax.validate_did(did)
    except AtprotoError as exc:
        raise InvalidRequestError(f"aud must be a DID: {exc.message}") from exc
    if hash_ and not _SERVICE_ID.fullmatch(service):
        raise InvalidRequestError("aud's #service must be letters, digits, '-' or '_'")
    return aud


_SERVICE_ID = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")


async def get_service_auth(call: Call) -> dict[str, Any]:
    creds = call.creds
    assert creds is not None and creds.did is not None
    aud = _service_audience(call.req_param("aud"))
    lxm = call.param("lxm", required=False)
    if lxm is not None:
        try:
            syntax.validate_nsid(lxm)
        except AtprotoError as exc:
            raise InvalidRequestError(f"lxm must be a method NSID: {exc.message}") from exc
    now = int(time.time())
    exp_raw = call.param("exp", required=False)
    if exp_raw is None:
        exp = now + 60
    else:
        if not is_ascii_digits(exp_raw, 12):
            raise InvalidRequestError(
                "exp must be a unix timestamp in seconds", code="BadExpiration"
            )
        exp = int(exp_raw)
        if exp <= now:
            raise InvalidRequestError("expiration is in the past", code="BadExpiration")
        if exp - now > jwt.MAX_SERVICE_TOKEN_S:
            raise InvalidRequestError("expiration is too far in the future", code="BadExpiration")
    if lxm is None and not creds.is_full:
        raise ForbiddenError("Only full sessions may request a token without lxm")
    if lxm in PRIVILEGED_LXMS and not creds.is_full:
        raise ForbiddenError(f"Only full sessions may request a token for {lxm}")
    acct = call.pds.accounts.cached(creds.did)
    if acct is None:
        raise RepoNotFoundError("Account not found")
    token = jwt.mint_service_jwt(
        acct.key, iss=acct.did, aud=aud, lxm=lxm, now=now, exp=exp, jti=secrets.token_hex(16)
    )
    return {"token": token}


METHODS: list[Method] = [
    query("com.atproto.server.describeServer", describe_server),
    procedure("com.atproto.server.createAccount", create_account, Auth.SERVICE),
    procedure("com.atproto.server.reserveSigningKey", reserve_signing_key, body="optional"),
    procedure("com.atproto.server.createSession", create_session),
    procedure("com.atproto.server.refreshSession", refresh_session, Auth.REFRESH, body="none"),
    query("com.atproto.server.getSession", get_session, Auth.ACCESS),
    procedure("com.atproto.server.deleteSession", delete_session, Auth.REFRESH, body="none"),
    procedure("com.atproto.server.createAppPassword", create_app_password, Auth.FULL),
    query("com.atproto.server.listAppPasswords", list_app_passwords, Auth.ACCESS),
    procedure("com.atproto.server.revokeAppPassword", revoke_app_password, Auth.FULL),
    query("com.atproto.server.checkAccountStatus", check_account_status, Auth.ACCESS),
    procedure("com.atproto.server.activateAccount", activate_account, Auth.FULL, body="none"),
    procedure(
        "com.atproto.server.deactivateAccount", deactivate_account, Auth.FULL, body="optional"
    ),
    procedure(
        "com.atproto.server.requestAccountDelete", request_account_delete, Auth.FULL, body="none"
    ),
    procedure("com.atproto.server.deleteAccount", delete_account),
    query("com.atproto.server.getServiceAuth", get_service_auth, Auth.ACCESS),
]
