"""Reporting a post to the network's moderation service.

The report is ``com.atproto.moderation.createReport`` sent to the member's own PDS
with ``atproto-proxy: <labeler DID>#atproto_labeler``: the PDS forwards it to the
moderation service in the member's name (a service token it signs), so the web client
never speaks to the moderators itself. The form gives the post (its URI and CID), one
of :data:`REASONS` and optional words; the moderation service files it for review.
"""

from __future__ import annotations

from starlette.responses import Response

from plaza.web import atp
from plaza.web.context import Page
from plaza.web.errors import NotConfiguredError, WebError

NSID = "com.atproto.moderation.createReport"
REASONS = {
    "spam": "Spam",
    "violation": "Breaks the rules",
    "misleading": "Misleading",
    "sexual": "Unwanted sexual content",
    "rude": "Rude or harassing",
    "other": "Something else",
}
MAX_REASON = 2000


async def report(page: Page) -> Response:
    form = await page.form()
    labeler = page.web.settings.labeler
    if labeler is None:
        raise NotConfiguredError("this web client has no moderation service (--labeler)")
    uri, cid = form.get("uri", ""), form.get("cid", "")
    atp.split_uri(uri)
    if not cid or len(cid) > 200:
        raise WebError("the post's CID is missing")
    kind = form.get("reason_type", "")
    if kind not in REASONS:
        raise WebError("choose why you report the post")
    words = form.get("reason", "").strip()
    if len(words) > MAX_REASON:
        raise WebError(f"the report's text is at most {MAX_REASON} characters")
    body = {
        "reasonType": f"com.atproto.moderation.defs#reason{kind.capitalize()}",
        "subject": {"$type": "com.atproto.repo.strongRef", "uri": uri, "cid": cid},
        **({"reason": words} if words else {}),
    }
    await atp.call(page, NSID, body, proxy=f"{labeler}#atproto_labeler")
    return page.back(form.get("next"), flash="Reported. The moderators will review it.")
