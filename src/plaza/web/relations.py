"""Editing one's own profile, and blocking and muting other accounts.

The profile is the member's ``app.bsky.actor.profile`` record (rkey ``self``): the
form changes its display name and description and keeps every other field (avatar,
banner, labels) as the repository holds it. A block is an ``app.bsky.graph.block``
record in the member's repository (public, as on any AT Protocol network); a mute is
private, kept by the app view (``app.bsky.graph.muteActor``/``unmuteActor`` through the
member's PDS).
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from plaza.web import atp
from plaza.web.context import Page
from plaza.web.errors import UpstreamError, WebError

PROFILE = "app.bsky.actor.profile"
MAX_NAME = 64
MAX_ABOUT = 256


def _did(form: dict[str, str]) -> str:
    did = form.get("did", "")
    if not did.startswith("did:") or len(did) > 2048:
        raise WebError("not an account")
    return did


async def edit_form(page: Page) -> Response:
    acct = page.require_account()
    prof = await atp.read(page, "app.bsky.actor.getProfile", {"actor": acct.did})
    return page.render("edit_profile.html", title="Edit profile", profile=prof)


async def edit(page: Page) -> Response:
    form = await page.form()
    acct = page.require_account()
    name, about = form.get("displayName", "").strip(), form.get("description", "").strip()
    if len(name) > MAX_NAME or len(about) > MAX_ABOUT:
        raise WebError(f"a name is at most {MAX_NAME} characters, a description {MAX_ABOUT}")
    record: dict[str, Any] = {}
    try:
        held = await atp.read(
            page,
            "com.atproto.repo.getRecord",
            {"repo": acct.did, "collection": PROFILE, "rkey": "self"},
        )
        record = dict(held.get("value") or {})
    except UpstreamError as exc:
        if exc.status != 400 and exc.code != "RecordNotFound":
            raise
    record.update({"$type": PROFILE, "displayName": name, "description": about})
    await atp.call(
        page,
        "com.atproto.repo.putRecord",
        {"repo": acct.did, "collection": PROFILE, "rkey": "self", "record": record},
    )
    return page.back(f"/profile/{acct.did}", flash="Profile saved.")


async def block(page: Page) -> Response:
    form = await page.form()
    did = _did(form)
    if form.get("blocking"):
        await atp.delete(page, form["blocking"])
        flash = "Unblocked."
    else:
        await atp.create(page, "app.bsky.graph.block", {"subject": did, "createdAt": atp.now_iso()})
        flash = "Blocked."
    return page.back(f"/profile/{did}", flash=flash)


async def mute(page: Page) -> Response:
    form = await page.form()
    did = _did(form)
    nsid = "app.bsky.graph.unmuteActor" if form.get("muted") else "app.bsky.graph.muteActor"
    await atp.call(page, nsid, {"actor": did})
    return page.back(f"/profile/{did}", flash="Unmuted." if form.get("muted") else "Muted.")
