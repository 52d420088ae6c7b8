"""The social pages: Home, compose, like, repost, follow, profiles, threads,
notifications and search.

Every write is a form (it works without JavaScript: the server answers 303 back to the
page it came from); when htmx sends it, the answer is the fragment to swap in instead.
The counts and states a fragment shows are the form's own (the app view indexes the
write a moment later), so a fragment never waits on the index. The read pages stream
(:meth:`~plaza.web.context.Page.stream`): what can be refused from the address alone is
refused first, with its status; the rest arrives after the page's head.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.responses import Response

from plaza.web import atp
from plaza.web.context import Page, local_path
from plaza.web.errors import WebError

MAX_POST_GRAPHEMES = 300
FEED_LIMIT = 30


def _count(form: dict[str, str], name: str) -> int:
    value = form.get(name, "0")
    return int(value) if value.isdigit() and len(value) < 12 else 0


def _subject(form: dict[str, str]) -> dict[str, str]:
    uri, cid = form.get("uri", ""), form.get("cid", "")
    atp.split_uri(uri)
    if not cid or len(cid) > 200:
        raise WebError("the post's CID is missing")
    return {"uri": uri, "cid": cid}


def _actions(page: Page, form: dict[str, str], **changes: Any) -> dict[str, Any]:
    state = {
        "uri": form.get("uri", ""),
        "cid": form.get("cid", ""),
        "like": form.get("like") or None,
        "repost": form.get("repost") or None,
        "likes": _count(form, "likes"),
        "reposts": _count(form, "reposts"),
        "replies": _count(form, "replies"),
        "next": local_path(form.get("next")),
    }
    state.update(changes)
    return state


def _feeds(page: Page) -> list[tuple[str, str]]:
    feeds = [("following", "Following")]
    if page.web.settings.appview is not None:
        feeds.append(("hot", "What's hot"))
    return feeds


async def home(page: Page) -> Response:
    feed = page.request.query_params.get("feed", "following")
    feeds = _feeds(page)
    if feed not in dict(feeds):
        raise WebError(f"no feed {feed[:50]!r}", status=404)
    if page.account is None and feed == "following":
        if page.web.settings.appview is None:
            return page.render("home.html", title="Home", items=[], feeds=feeds, feed=feed)
        feed = "hot"
    params: dict[str, Any] = {"limit": FEED_LIMIT}
    if feed == "following":
        nsid = "app.bsky.feed.getTimeline"
    else:
        uri = f"at://{atp.appview_did(page)}/app.bsky.feed.generator/{feed}"
        nsid, params["feed"] = "app.bsky.feed.getFeed", uri

    async def fetch() -> dict[str, Any]:
        out = await atp.read(page, nsid, params)
        return {"items": out.get("feed", [])}

    return await page.stream("home.html", fetch, title="Home", feeds=feeds, feed=feed)


_IMAGE_MAGIC = {
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
    b"GIF87a": "image/gif",
    b"GIF89a": "image/gif",
}
MAX_IMAGE_BYTES = 1_000_000
MAX_ALT = 2000


def image_type(data: bytes) -> str:
    """The image's MIME type from its first bytes (PNG, JPEG, GIF, WebP), never from
    what the browser declared; :class:`WebError` for anything else."""
    for magic, mime in _IMAGE_MAGIC.items():
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    raise WebError("an image is a PNG, JPEG, GIF or WebP file")


async def _images(page: Page, form: dict[str, str], files: list[tuple[str, bytes, str]]) -> Any:
    acct = page.require_account()
    images = []
    for name, data, _declared in files:
        if name != "image":
            continue
        if len(data) > MAX_IMAGE_BYTES:
            raise WebError(f"an image is at most {MAX_IMAGE_BYTES // 1000} kB")
        alt = form.get("alt", "").strip()
        if len(alt) > MAX_ALT:
            raise WebError(f"alt text is at most {MAX_ALT} characters")
        out = await page.web.upstream.upload_blob(acct.pds, data, image_type(data), acct.access)
        images.append({"image": out["blob"], "alt": alt})
    return images


async def compose(page: Page) -> Response:
    form, files = await page.upload_form()
    text = form.get("text", "").strip()
    images = await _images(page, form, files)
    if not text and not images:
        raise WebError("write something first")
    if len(text) > MAX_POST_GRAPHEMES * 4:
        raise WebError(f"a post is at most {MAX_POST_GRAPHEMES} characters")
    record: dict[str, Any] = {"text": text, "createdAt": atp.now_iso(), "langs": ["en"]}
    if form.get("reply_uri"):
        parent = {"uri": form["reply_uri"], "cid": form.get("reply_cid", "")}
        root = {
            "uri": form.get("root_uri") or parent["uri"],
            "cid": form.get("root_cid") or parent["cid"],
        }
        for ref in (parent, root):
            _subject(ref)
        record["reply"] = {"root": root, "parent": parent}
    if form.get("quote_uri"):
        quoted = _subject({"uri": form["quote_uri"], "cid": form.get("quote_cid", "")})
        record["embed"] = {"$type": "app.bsky.embed.record", "record": quoted}
    elif images:
        record["embed"] = {"$type": "app.bsky.embed.images", "images": images}
    await atp.create(page, "app.bsky.feed.post", record)
    return page.back(form.get("next"), flash="Posted.")


async def like(page: Page) -> Response:
    form = await page.form()
    subject = _subject(form)
    if form.get("like"):
        await atp.delete(page, form["like"])
        state = _actions(page, form, like=None, likes=max(0, _count(form, "likes") - 1))
    else:
        made = await atp.create(
            page, "app.bsky.feed.like", {"subject": subject, "createdAt": atp.now_iso()}
        )
        state = _actions(page, form, like=made["uri"], likes=_count(form, "likes") + 1)
    if page.htmx:
        return page.render("actions.html", a=state)
    return page.back(form.get("next"))


async def repost(page: Page) -> Response:
    form = await page.form()
    subject = _subject(form)
    if form.get("repost"):
        await atp.delete(page, form["repost"])
        state = _actions(page, form, repost=None, reposts=max(0, _count(form, "reposts") - 1))
    else:
        made = await atp.create(
            page, "app.bsky.feed.repost", {"subject": subject, "createdAt": atp.now_iso()}
        )
        state = _actions(page, form, repost=made["uri"], reposts=_count(form, "reposts") + 1)
    if page.htmx:
        return page.render("actions.html", a=state)
    return page.back(form.get("next"))


async def follow(page: Page) -> Response:
    form = await page.form()
    did = form.get("did", "")
    if not did.startswith("did:") or len(did) > 2048:
        raise WebError("not an account to follow")
    if form.get("following"):
        await atp.delete(page, form["following"])
        following = None
    else:
        made = await atp.create(
            page, "app.bsky.graph.follow", {"subject": did, "createdAt": atp.now_iso()}
        )
        following = made["uri"]
    if page.htmx:
        return page.render(
            "follow.html", did=did, following=following, next=local_path(form.get("next"))
        )
    return page.back(form.get("next"), flash="Following." if following else "Unfollowed.")


async def profile(page: Page) -> Response:
    actor = page.request.path_params["actor"]
    if len(actor) > 2048 or not actor.strip():
        raise WebError("no such account", status=404)

    async def fetch() -> dict[str, Any]:
        prof, feed = await asyncio.gather(
            atp.read(page, "app.bsky.actor.getProfile", {"actor": actor}),
            atp.read(page, "app.bsky.feed.getAuthorFeed", {"actor": actor, "limit": FEED_LIMIT}),
        )
        return {"profile": prof, "items": feed.get("feed", [])}

    # The title is the name in the address: the head goes out before the profile arrives.
    return await page.stream("profile.html", fetch, title=actor)


async def thread(page: Page) -> Response:
    did, rkey = page.request.path_params["did"], page.request.path_params["rkey"]
    uri = f"at://{did}/app.bsky.feed.post/{rkey}"
    atp.split_uri(uri)

    async def fetch() -> dict[str, Any]:
        out = await atp.read(page, "app.bsky.feed.getPostThread", {"uri": uri, "depth": 6})
        return {"thread": out.get("thread", {})}

    return await page.stream("thread.html", fetch, title="Post")


async def notifications(page: Page) -> Response:
    page.require_account()

    async def fetch() -> dict[str, Any]:
        out = await atp.read(page, "app.bsky.notification.listNotifications", {"limit": 50})
        return {"items": out.get("notifications", [])}

    return await page.stream("notifications.html", fetch, title="Notifications")


async def search(page: Page) -> Response:
    q = page.request.query_params.get("q", "").strip()[:300]
    if not q:
        return page.render("search.html", title="Search", q=q, posts=[], actors=[])

    async def fetch() -> dict[str, Any]:
        found_posts, found_actors = await asyncio.gather(
            atp.read(page, "app.bsky.feed.searchPosts", {"q": q, "limit": 25}),
            atp.read(page, "app.bsky.actor.searchActors", {"q": q, "limit": 10}),
        )
        return {"posts": found_posts.get("posts", []), "actors": found_actors.get("actors", [])}

    return await page.stream("search.html", fetch, title="Search", q=q)
