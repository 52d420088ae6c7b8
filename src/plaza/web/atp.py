"""The member's side of the AT Protocol, as the web client speaks it.

Reads go to the member's PDS with their access token (the PDS forwards ``app.bsky.*``
to its app view); a visitor who is not signed in reads from the app view directly when
the web client has one. Writes are records in the member's own repository
(``com.atproto.repo.createRecord``/``deleteRecord``). An expired access token is
refreshed once with the refresh token, and the call retried; the new tokens reach the
session cookie with the answer (a streamed page renews them before its head instead,
:meth:`~plaza.web.context.Page.stream`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from plaza.web.context import Page
from plaza.web.errors import NotConfiguredError, NotSignedInError, UpstreamError
from plaza.web.sessions import Account
from plaza.web.tokens import renew

_EXPIRED = {"ExpiredToken", "InvalidToken"}


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def pds_of(session: dict[str, Any], fallback: str) -> str:
    """The PDS a ``createSession`` answer's DID document names, else ``fallback``."""
    doc = session.get("didDoc")
    if isinstance(doc, dict):
        for svc in doc.get("service") or []:
            if (
                isinstance(svc, dict)
                and str(svc.get("id", "")).endswith("#atproto_pds")
                and isinstance(svc.get("serviceEndpoint"), str)
                and svc["serviceEndpoint"].startswith(("http://", "https://"))
            ):
                return str(svc["serviceEndpoint"]).rstrip("/")
    return fallback


def account_of(session: dict[str, Any], fallback: str) -> Account:
    return Account(
        did=str(session["did"]),
        handle=str(session.get("handle", session["did"])),
        pds=pds_of(session, fallback),
        access=str(session["accessJwt"]),
        refresh=str(session["refreshJwt"]),
    )


async def _refresh(page: Page, acct: Account) -> None:
    await renew(page.web.upstream, acct)


async def read(page: Page, nsid: str, params: dict[str, Any] | None = None) -> Any:
    """An ``app.bsky.*`` (or ``com.atproto.*``) query as the visitor."""
    up, acct = page.web.upstream, page.account
    if acct is None:
        base = page.web.settings.appview
        if base is None:
            raise NotSignedInError("sign in to read this")
        return await up.query(base, nsid, params)
    try:
        return await up.query(acct.pds, nsid, params, acct.access)
    except UpstreamError as exc:
        if exc.code not in _EXPIRED:
            raise
        await _refresh(page, acct)
        return await up.query(acct.pds, nsid, params, acct.access)


async def call(page: Page, nsid: str, body: dict[str, Any], *, proxy: str | None = None) -> Any:
    """A procedure as the signed-in member (forwarded to ``proxy``, if given)."""
    acct = page.require_account()
    up = page.web.upstream
    try:
        return await up.procedure(acct.pds, nsid, body, acct.access, proxy=proxy)
    except UpstreamError as exc:
        if exc.code not in _EXPIRED:
            raise
        await _refresh(page, acct)
        return await up.procedure(acct.pds, nsid, body, acct.access, proxy=proxy)


async def create(page: Page, collection: str, record: dict[str, Any]) -> dict[str, Any]:
    """Write a record to the member's repository; its ``{uri, cid}``."""
    acct = page.require_account()
    body = {"repo": acct.did, "collection": collection, "record": {"$type": collection, **record}}
    out: dict[str, Any] = await call(page, "com.atproto.repo.createRecord", body)
    return out


async def delete(page: Page, uri: str) -> None:
    """Delete the member's record at ``uri`` (one of their own)."""
    acct = page.require_account()
    did, collection, rkey = split_uri(uri)
    if did != acct.did:
        raise UpstreamError("that record is not yours", code="InvalidRequest", status=400)
    await call(
        page,
        "com.atproto.repo.deleteRecord",
        {"repo": did, "collection": collection, "rkey": rkey},
    )


def split_uri(uri: str) -> tuple[str, str, str]:
    """``at://did/collection/rkey`` as its three parts."""
    parts = uri.removeprefix("at://").split("/")
    if not uri.startswith("at://") or len(parts) != 3 or not all(parts):
        raise UpstreamError(f"not a record URI: {uri[:200]!r}", code="InvalidRequest", status=400)
    return parts[0], parts[1], parts[2]


def appview_did(page: Page) -> str:
    """The app view's did:web (the publisher of its built-in feeds)."""
    base = page.web.settings.appview
    if base is None:
        raise NotConfiguredError("this web client has no app view (--appview)")
    host = base.split("://", 1)[1].replace(":", "%3A")
    return f"did:web:{host}"
