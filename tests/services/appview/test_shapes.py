"""Every answer of the app view has its Lexicon's exact output shape: each method is
called through a PDS (the proxy path, with service auth) on a network holding posts
with every kind of embed, replies, quotes, likes, reposts, follows, blocks, lists and
profiles, and its JSON is checked against the bundled ``app.bsky`` Lexicons."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from atproto import models
from plaza.atproto import datamodel
from plaza.atproto.lexicon import default_registry
from tests.services.appview.conftest import Net

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


@pytest.fixture(scope="module")
def world(net: Net) -> dict[str, Any]:
    alice, a = net.client(0, "sa")
    bob, b = net.client(1, "sb")
    carol, c = net.client(0, "sc")
    avatar = alice.upload_blob(PNG).blob
    alice.com.atproto.repo.put_record(
        models.ComAtprotoRepoPutRecord.Data(
            repo=a["did"],
            collection="app.bsky.actor.profile",
            rkey="self",
            record={
                "$type": "app.bsky.actor.profile",
                "displayName": "Alice",
                "avatar": avatar.model_dump(by_alias=True),
            },
        )
    )
    for follower in (bob, carol):
        follower.follow(a["did"])
    alice.follow(b["did"])
    plain = alice.send_post("plain words to search")
    image = alice.send_image("with an image", PNG, "a pixel")
    ref = models.create_strong_ref(plain)
    quote = bob.send_post("quoting alice", embed=models.AppBskyEmbedRecord.Main(record=ref))
    external = bob.send_post(
        "a link",
        embed=models.AppBskyEmbedExternal.Main(
            external=models.AppBskyEmbedExternal.External(
                uri="https://example.com/", title="Example", description="a page"
            )
        ),
    )
    reply = carol.send_post(
        "a reply", reply_to=models.AppBskyFeedPost.ReplyRef(root=ref, parent=ref)
    )
    bob.like(plain.uri, plain.cid)
    carol.repost(image.uri, image.cid)
    carol.app.bsky.graph.block.create(
        c["did"],
        models.AppBskyGraphBlock.Record(subject=b["did"], created_at=alice.get_current_time_iso()),
    )
    net.synced()
    token = alice._session.access_jwt  # type: ignore[union-attr]
    return {
        "net": net,
        "auth": {"authorization": f"Bearer {token}"},
        "a": a,
        "b": b,
        "c": c,
        "posts": [plain, image, quote, external, reply],
    }


def _call(world: dict[str, Any], nsid: str, params: list[tuple[str, str]]) -> Any:
    net: Net = world["net"]
    r = httpx.get(f"{net.pds[0]}/xrpc/{nsid}", params=params, headers=world["auth"], timeout=30)
    assert r.status_code == 200, (nsid, r.text)
    body = r.json()
    default_registry().validate_output(nsid, datamodel.from_json(body))
    return body


def test_outputs_have_the_lexicon_shapes(world: dict[str, Any]) -> None:
    a, b = world["a"]["did"], world["b"]["did"]
    uris = [p.uri for p in world["posts"]]
    calls = [
        ("app.bsky.actor.getProfile", [("actor", a)]),
        ("app.bsky.actor.getProfiles", [("actors", a), ("actors", b)]),
        ("app.bsky.feed.getTimeline", [("limit", "10")]),
        ("app.bsky.feed.getAuthorFeed", [("actor", a)]),
        ("app.bsky.feed.getAuthorFeed", [("actor", b), ("filter", "posts_with_media")]),
        ("app.bsky.feed.getPostThread", [("uri", uris[0])]),
        ("app.bsky.feed.getPosts", [("uris", u) for u in uris]),
    ]
    for nsid, params in calls:
        _call(world, nsid, params)
    timeline = _call(world, "app.bsky.feed.getTimeline", [])
    kinds = {i["post"].get("embed", {}).get("$type") for i in timeline["feed"]}
    assert {"app.bsky.embed.images#view", "app.bsky.embed.record#view"} <= kinds


def test_the_other_groups_have_the_lexicon_shapes(world: dict[str, Any]) -> None:
    a, b, c = world["a"]["did"], world["b"]["did"], world["c"]["did"]
    plain = world["posts"][0].uri
    described = _call(world, "app.bsky.feed.describeFeedGenerator", [])
    feed_uri = described["feeds"][0]["uri"]
    calls = [
        ("app.bsky.feed.getFeed", [("feed", feed_uri)]),
        ("app.bsky.feed.getFeedGenerator", [("feed", feed_uri)]),
        ("app.bsky.feed.getFeedGenerators", [("feeds", feed_uri)]),
        ("app.bsky.feed.getLikes", [("uri", plain)]),
        ("app.bsky.feed.getRepostedBy", [("uri", world["posts"][1].uri)]),
        ("app.bsky.feed.getQuotes", [("uri", plain)]),
        ("app.bsky.feed.getActorLikes", [("actor", a)]),
        ("app.bsky.feed.searchPosts", [("q", "search")]),
        ("app.bsky.actor.searchActors", [("q", "sa")]),
        ("app.bsky.actor.searchActorsTypeahead", [("q", "s")]),
        ("app.bsky.actor.getSuggestions", []),
        ("app.bsky.graph.getFollowers", [("actor", a)]),
        ("app.bsky.graph.getFollows", [("actor", a)]),
        ("app.bsky.graph.getBlocks", []),
        ("app.bsky.graph.getMutes", []),
        ("app.bsky.graph.getLists", [("actor", a)]),
        ("app.bsky.graph.getRelationships", [("actor", a), ("others", b), ("others", c)]),
        ("app.bsky.notification.listNotifications", []),
        ("app.bsky.notification.getUnreadCount", []),
    ]
    for nsid, params in calls:
        _call(world, nsid, params)
    notes = _call(world, "app.bsky.notification.listNotifications", [])
    assert {n["reason"] for n in notes["notifications"]} >= {"follow", "like", "reply", "quote"}
