"""Custom feeds through the atproto SDK and the PDS: the app view's own "hot" feed, a
third-party feed generator server plugged in by a generator record, and the refusals
(unknown feeds, a generator that answers junk or too much, SSRF to private hosts)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from atproto_client.exceptions import BadRequestError

from atproto import Client, models
from plaza.services.appview.feeds import parse_skeleton
from plaza.services.appview.remote import Remote, RemoteError, web_did_url
from tests.services.appview.feednet import FeedNet, feed_network


@pytest.fixture(scope="module")
def fnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FeedNet]:
    yield from feed_network(tmp_path_factory.mktemp("feeds"))


@pytest.fixture(scope="module")
def people(fnet: FeedNet) -> dict[str, tuple[Client, dict[str, str]]]:
    return {name: fnet.net.client(0, name) for name in ("alice", "bob", "carol")}


def publish_generator(client: Client, did: str, rkey: str, service: str) -> str:
    record = {
        "$type": "app.bsky.feed.generator",
        "did": service,
        "displayName": f"feed {rkey}",
        "description": "a test feed",
        "createdAt": client.get_current_time_iso(),
    }
    out = client.com.atproto.repo.put_record(
        models.ComAtprotoRepoPutRecord.Data(
            repo=did, collection="app.bsky.feed.generator", rkey=rkey, record=record
        )
    )
    return str(out.uri)


def test_builtin_hot_feed(fnet: FeedNet, people: dict[str, tuple[Client, dict[str, str]]]) -> None:
    alice, _ = people["alice"]
    bob, _ = people["bob"]
    carol, _ = people["carol"]
    quiet = alice.send_post("a quiet post")
    loud = bob.send_post("a post everyone likes")
    mild = carol.send_post("a post one person likes")
    for client in (alice, carol):
        client.like(loud.uri, loud.cid)
    carol.repost(loud.uri, loud.cid)
    alice.like(mild.uri, mild.cid)
    fnet.net.synced()

    described = alice.app.bsky.feed.describe_feed_generator()
    hot_uri = f"at://{fnet.appview_did}/app.bsky.feed.generator/hot"
    assert described.did == fnet.appview_did
    assert [f.uri for f in described.feeds] == [hot_uri]

    page = alice.app.bsky.feed.get_feed({"feed": hot_uri, "limit": 2})
    uris = [item.post.uri for item in page.feed]
    assert uris == [loud.uri, mild.uri]
    top = page.feed[0].post
    assert top.like_count == 2 and top.repost_count == 1
    assert top.viewer is not None and top.viewer.like is not None
    assert page.cursor is not None
    rest = alice.app.bsky.feed.get_feed({"feed": hot_uri, "limit": 2, "cursor": page.cursor})
    assert quiet.uri in [item.post.uri for item in rest.feed]
    assert loud.uri not in [item.post.uri for item in rest.feed]

    info = alice.app.bsky.feed.get_feed_generator({"feed": hot_uri})
    assert info.view.did == fnet.appview_did and info.view.display_name == "What's hot"
    assert info.is_online and info.is_valid
    with pytest.raises(BadRequestError) as err:
        alice.app.bsky.feed.get_feed({"feed": hot_uri, "cursor": "not-a-number"})
    assert err.value.response is not None and err.value.response.status_code == 400


def test_third_party_generator(
    fnet: FeedNet, people: dict[str, tuple[Client, dict[str, str]]]
) -> None:
    alice, a = people["alice"]
    bob, b = people["bob"]
    carol, c = people["carol"]
    feed_uri = publish_generator(alice, a["did"], "picks", fnet.feedgen.did)
    first = bob.send_post("picked by the generator")
    second = carol.send_post("also picked")
    repost = carol.repost(first.uri, first.cid)
    fnet.net.synced()
    missing = f"at://{b['did']}/app.bsky.feed.post/3zzzzzzzzzzzz"
    fnet.feedgen.answer = {
        "feed": [
            {"post": second.uri, "feedContext": "ctx-1"},
            {"post": missing},
            {
                "post": first.uri,
                "reason": {
                    "$type": "app.bsky.feed.defs#skeletonReasonRepost",
                    "repost": repost.uri,
                },
            },
        ],
        "cursor": "next-page",
    }

    page = alice.app.bsky.feed.get_feed({"feed": feed_uri, "limit": 10, "cursor": "abc"})
    assert [item.post.uri for item in page.feed] == [second.uri, first.uri]
    assert page.feed[0].feed_context == "ctx-1"
    reason = page.feed[1].reason
    assert reason is not None and reason.by.did == c["did"]
    assert page.cursor == "next-page"
    assert fnet.feedgen.refused == []
    call = fnet.feedgen.callers[-1]
    assert call["iss"] == fnet.appview_did and call["aud"] == fnet.feedgen.did
    assert call["lxm"] == "app.bsky.feed.getFeedSkeleton"
    assert call["params"] == {"feed": feed_uri, "limit": "10", "cursor": "abc"}

    info = bob.app.bsky.feed.get_feed_generator({"feed": feed_uri})
    assert info.view.creator.did == a["did"] and info.view.did == fnet.feedgen.did
    assert info.view.display_name == "feed picks" and info.is_online
    many = bob.app.bsky.feed.get_feed_generators(
        {"feeds": [feed_uri, f"at://{fnet.appview_did}/app.bsky.feed.generator/hot"]}
    )
    assert [g.uri for g in many.feeds] == [
        feed_uri,
        f"at://{fnet.appview_did}/app.bsky.feed.generator/hot",
    ]


def _error(call: Any) -> tuple[str | None, str]:
    with pytest.raises(BadRequestError) as err:
        call()
    body = err.value.response.content if err.value.response is not None else None
    return getattr(body, "error", None), str(getattr(body, "message", ""))


def test_generators_that_misbehave(
    fnet: FeedNet, people: dict[str, tuple[Client, dict[str, str]]]
) -> None:
    alice, a = people["alice"]
    feed_uri = publish_generator(alice, a["did"], "junk", fnet.feedgen.did)
    nowhere = publish_generator(alice, a["did"], "gone", "did:web:127.0.0.1%3A9")
    fnet.net.synced()
    get = alice.app.bsky.feed.get_feed

    fnet.feedgen.answer = {"feed": [{"post": "at://did:plc:x/app.bsky.feed.like/1"}]}
    code, message = _error(lambda: get({"feed": feed_uri}))
    assert code == "UnknownFeed" and "not a post" in message
    fnet.feedgen.answer = b"[" * 10
    code, message = _error(lambda: get({"feed": feed_uri}))
    assert "JSON" in message
    fnet.feedgen.answer = {"feed": [], "pad": "x" * 100_000}
    code, message = _error(lambda: get({"feed": feed_uri}))
    assert "larger than" in message
    code, message = _error(lambda: get({"feed": nowhere}))
    assert code == "UnknownFeed" and "unreachable" in message
    code, _ = _error(lambda: get({"feed": f"at://{a['did']}/app.bsky.feed.generator/none"}))
    assert code == "UnknownFeed"
    code, _ = _error(lambda: get({"feed": f"at://{a['did']}/app.bsky.feed.post/x"}))
    assert code == "InvalidRequest"


def test_remote_refuses_private_hosts_and_bad_answers() -> None:
    async def scenario() -> None:
        remote = Remote("http://127.0.0.1:1")
        try:
            for url in (
                "http://127.0.0.1:8080/x",
                "https://127.0.0.1/x",
                "https://10.1.2.3/x",
                "https://[::1]/x",
                "https://169.254.169.254/latest",
                "ftp://a.b/x",
                "https://user:pw@example.com/x",
            ):
                with pytest.raises(RemoteError):
                    await remote.get_json(url)
            with pytest.raises(RemoteError):
                await remote.did_document("did:key:zQ3sh")
        finally:
            await remote.aclose()

    asyncio.run(scenario())
    assert web_did_url("did:web:example.com", allow_private=False) == (
        "https://example.com/.well-known/did.json"
    )
    with pytest.raises(RemoteError):
        web_did_url("did:web:example.com:path:x", allow_private=False)
    with pytest.raises(RemoteError):
        parse_skeleton({"feed": "nope"}, 10)
    assert (
        len(
            parse_skeleton({"feed": [{"post": "at://did:plc:a/app.bsky.feed.post/1"}] * 5}, 3).items
        )
        == 3
    )


def test_remote_gives_up_on_a_silent_service() -> None:
    """A host that accepts the connection and never answers costs at most the bound."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)  # the kernel completes the handshake; nobody ever reads
        port = silent.getsockname()[1]

        async def scenario() -> str:
            remote = Remote("http://127.0.0.1:1", allow_private=True, timeout_s=0.3)
            try:
                with pytest.raises(RemoteError) as err:
                    await remote.get_json(f"http://127.0.0.1:{port}/xrpc/x")
                return err.value.message
            finally:
                await remote.aclose()

        assert "did not answer within 0.3 s" in asyncio.run(scenario())
