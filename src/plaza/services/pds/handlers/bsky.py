"""``app.bsky.*``: profiles and preferences served here, every other read proxied.

The atproto SDK's ``login`` asks the PDS for ``app.bsky.actor.getProfile`` and needs an
answer to know who it is. With an app view configured, an authenticated caller's
profile reads go to it (it has counts and viewer state), and a profile it does not know
yet, of an account hosted here, is served locally from its repository; without one,
profiles of hosted accounts are always served locally. Preferences are served here
(private state that migrates with the account; the personal details among them only
for a full session, never an app password). Every
other ``app.bsky.*`` (and ``chat.bsky.*``) call of an authenticated caller goes to an
app view: the one named by the ``atproto-proxy: <did>#<service>`` header, else the
configured default, with an inter-service token for the caller, through
:mod:`plaza.services.pds.proxy` (which decides where this PDS may connect). Without
either, the answer is a clear ``MethodNotImplemented``.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from typing import Any

from starlette.responses import Response

from plaza.atproto import datamodel, syntax
from plaza.atproto.errors import AtprotoError
from plaza.errors import PlazaError
from plaza.services.pds import jwt
from plaza.services.pds.auth import Auth
from plaza.services.pds.components import Call, PdsComponents
from plaza.services.pds.errors import (
    AuthRequiredError,
    ForbiddenError,
    InvalidRequestError,
    MethodNotImplementedError,
)
from plaza.services.pds.proxy import destination
from plaza.services.pds.xrpc import Method, procedure, query

PROXIED_PREFIXES = ("app.bsky.", "chat.bsky.")
MAX_PREFERENCES_BYTES = 100_000


def _blob_url(call: Call, did: str, blob: Any) -> str | None:
    if isinstance(blob, dict) and isinstance(blob.get("ref"), dict):
        link = blob["ref"].get("$link")
        if isinstance(link, str):
            base = call.pds.settings.public_url.rstrip("/")
            return f"{base}/xrpc/com.atproto.sync.getBlob?did={did}&cid={link}"
    return None


def _profile(call: Call, actor: str) -> dict[str, Any] | None:
    ctx = call.pds
    acct = ctx.accounts.lookup(actor)
    if acct is None:
        return None
    out: dict[str, Any] = {"did": acct.did, "handle": acct.handle}
    found = ctx.repos.get_record(acct.did, "app.bsky.actor.profile", "self")
    record = datamodel.to_json(found[1]) if found is not None else None
    if isinstance(record, dict):
        for name in ("displayName", "description"):
            if isinstance(record.get(name), str):
                out[name] = record[name]
        for name in ("avatar", "banner"):
            url = _blob_url(call, acct.did, record.get(name))
            if url is not None:
                out[name] = url
    store = ctx.store
    out["followsCount"] = store.count_records(acct.did, "app.bsky.graph.follow")
    out["postsCount"] = store.count_records(acct.did, "app.bsky.feed.post")
    out["followersCount"] = 0
    out["indexedAt"] = acct.created_at
    if not acct.active:
        out["viewer"] = {}
    return out


async def get_profile(call: Call) -> Any:
    actor = call.req_param("actor")
    if call.pds.settings.appview_url and call.creds is not None:
        # The app view has counts, viewer state and every account; an account it has not
        # indexed yet (one just created), or any while it is unreachable, is still
        # answered here.
        try:
            forwarded = await _forward(call)
        except PlazaError:
            forwarded = None
        if forwarded is not None and forwarded.status_code == 200:
            return forwarded
        local = _profile(call, actor)
        if local is not None:
            return local
        if forwarded is None:
            raise InvalidRequestError("Profile not found")
        return forwarded
    profile = _profile(call, actor)
    if profile is None:
        raise InvalidRequestError("Profile not found")
    call.account_did = profile["did"]
    return profile


async def get_profiles(call: Call) -> Any:
    if call.pds.settings.appview_url and call.creds is not None:
        return await _forward(call)
    actors = call.request.query_params.getlist("actors")
    if not actors:
        raise InvalidRequestError("actors is required")
    profiles = [p for p in (_profile(call, a) for a in actors[:25]) if p is not None]
    return {"profiles": profiles}


# Preferences only a full session may read or write, as the reference PDS has it: the
# birth date is personal, and an app password is handed to third-party clients.
FULL_ACCESS_ONLY = frozenset({"app.bsky.actor.defs#personalDetailsPref"})
MAX_PREFERENCE_DEPTH = 32


def _stored_preferences(call: Call, did: str) -> list[dict[str, Any]]:
    body = call.pds.store.get_preferences(did)
    prefs: list[dict[str, Any]] = json.loads(body) if body else []
    return prefs


def _shallow(value: Any, limit: int) -> bool:
    """True iff ``value`` nests at most ``limit`` objects and arrays deep."""
    level = [value]
    for _ in range(limit + 1):
        level = [
            v
            for item in level
            for v in (item.values() if isinstance(item, dict) else item)
            if isinstance(v, dict | list)
        ]
        if not level:
            return True
    return False


async def get_preferences(call: Call) -> dict[str, Any]:
    creds = call.creds
    assert creds is not None and creds.did is not None
    prefs = _stored_preferences(call, creds.did)
    if not creds.is_full:
        prefs = [p for p in prefs if p.get("$type") not in FULL_ACCESS_ONLY]
    return {"preferences": prefs}


async def put_preferences(call: Call) -> None:
    creds = call.creds
    assert creds is not None and creds.did is not None
    prefs = call.field("preferences", list)
    for i, p in enumerate(prefs):
        typ = p.get("$type") if isinstance(p, dict) else None
        if not isinstance(typ, str) or not typ.startswith("app.bsky."):
            raise InvalidRequestError(f"preferences[{i}] must have an app.bsky.* $type")
        if not creds.is_full and typ in FULL_ACCESS_ONLY:
            raise InvalidRequestError("Do not have authorization to set preferences.")
    if not _shallow(prefs, MAX_PREFERENCE_DEPTH):
        raise InvalidRequestError(f"Preferences nest deeper than {MAX_PREFERENCE_DEPTH} levels")
    if not creds.is_full:  # what an app password cannot see, it does not replace
        kept = [p for p in _stored_preferences(call, creds.did) if p["$type"] in FULL_ACCESS_ONLY]
        prefs = kept + prefs
    body = json.dumps(prefs, separators=(",", ":"))
    if len(body) > MAX_PREFERENCES_BYTES:
        raise InvalidRequestError("Preferences are too large")
    call.pds.store.put_preferences(creds.did, body)


# -- proxying ------------------------------------------------------------------------
def _target(ctx: PdsComponents, header: str | None) -> tuple[str | None, str]:
    """``(service DID, service id)`` named by ``atproto-proxy``, or ``(None, "")`` for the
    configured app view; :class:`InvalidRequestError` when the header is malformed."""
    if not header:
        return None, ""
    did, _, service = header.partition("#")
    if not _SERVICE_ID.fullmatch(service):
        raise InvalidRequestError("atproto-proxy must be <did>#<service id>")
    try:
        syntax.validate_did(did)
    except AtprotoError as exc:
        raise InvalidRequestError(f"atproto-proxy names an invalid DID: {exc.message}") from exc
    return did, service


async def _endpoint(ctx: PdsComponents, did: str | None, service: str) -> tuple[str, str]:
    """``(base URL, audience DID)`` to forward to (not yet checked as a destination)."""
    s = ctx.settings
    if did is None:
        if s.appview_url:
            return s.appview_url, s.appview_did or ""
        raise MethodNotImplementedError(
            "Method Not Implemented: this PDS has no app view configured for app.bsky.* reads"
        )
    if did == s.appview_did and s.appview_url:
        return s.appview_url, did
    if did.startswith("did:plc:"):
        try:
            syntax.validate_did_plc(did)
        except AtprotoError as exc:
            raise InvalidRequestError(f"atproto-proxy: {exc.message}") from exc
        data = await ctx.identity.data(did)
        svc = data.services.get(service)
        if svc is None:
            raise InvalidRequestError(f"{did} has no service #{service}")
        return svc.endpoint, did
    raise InvalidRequestError(f"Cannot resolve proxy target {did}")


async def _forward(call: Call) -> Response:
    """Forward the call for its authenticated caller, with an inter-service token."""
    ctx = call.pds
    creds = call.creds
    if creds is None or creds.did is None:
        raise AuthRequiredError("Authentication Required to reach another service")
    if call.nsid.startswith("chat.bsky.") and not creds.is_privileged:
        raise ForbiddenError("chat.bsky.* needs a full session or a privileged app password")
    did, service = _target(ctx, call.request.headers.get("atproto-proxy"))
    if did is None and call.nsid in PROXIED_WHEN_NAMED:
        # a report with no target named: the network's moderation service
        did, service = ctx.settings.moderation_did, "atproto_labeler"
    url, aud = await _endpoint(ctx, did, service)
    dest = destination(url, ctx.settings)
    headers: dict[str, str] = {}
    acct = ctx.accounts.cached(creds.did)
    if acct is not None and aud:
        now = int(time.time())
        token = jwt.mint_service_jwt(
            acct.key,
            iss=acct.did,
            aud=aud,
            lxm=call.nsid,
            now=now,
            exp=now + 60,
            jti=secrets.token_hex(16),
        )
        headers["authorization"] = f"Bearer {token}"
    return await ctx.proxy.forward(call, dest, headers)


# Forwarded to the service the atproto-proxy header names (a labeler's
# ``#atproto_labeler``): reports go to the moderation service the client chose, or,
# with none named, to the PDS's default moderation service (``moderation_did``).
PROXIED_WHEN_NAMED = frozenset({"com.atproto.moderation.createReport"})

# Private state of the account, kept here whatever the atproto-proxy header says.
LOCAL_ONLY = frozenset({"app.bsky.actor.getPreferences", "app.bsky.actor.putPreferences"})


async def _no_app_view(call: Call) -> None:
    raise MethodNotImplementedError(
        "Method Not Implemented: this PDS has no app view configured for app.bsky.* reads"
    )


def proxy_method(ctx: PdsComponents, nsid: str, *, named: bool) -> Method | None:
    """A forwarding method for an ``app.bsky.*`` or ``chat.bsky.*`` NSID, or for
    ``com.atproto.moderation.createReport`` with a target named or a default moderation
    service configured, else ``None``.

    Forwarding needs an access token: the target gets a token in the caller's name, and
    an anonymous caller must not make this PDS fetch anything (see
    :mod:`plaza.services.pds.proxy`). With no target named (``named``) and no app view
    configured, there is nowhere to forward to, whoever asks.
    """
    if nsid in PROXIED_WHEN_NAMED and (named or ctx.settings.moderation_did):
        return Method(nsid, "any", _forward, Auth.ACCESS, "none")
    if not nsid.startswith(PROXIED_PREFIXES) or nsid in LOCAL_ONLY:
        return None
    if not named and not ctx.settings.appview_url:
        return Method(nsid, "any", _no_app_view, Auth.NONE, "none")
    return Method(nsid, "any", _forward, Auth.ACCESS, "none")


_SERVICE_ID = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")


METHODS: list[Method] = [
    query("app.bsky.actor.getProfile", get_profile, Auth.OPTIONAL),
    query("app.bsky.actor.getProfiles", get_profiles, Auth.OPTIONAL),
    query("app.bsky.actor.getPreferences", get_preferences, Auth.ACCESS),
    procedure("app.bsky.actor.putPreferences", put_preferences, Auth.ACCESS),
]
