"""Labels from a labeler's ``subscribeLabels`` stream, checked against its
``#atproto_label`` key in the directory, and shown on posts and profiles read with the
atproto SDK through the PDS."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from plaza.atproto.crypto import PrivateKey
from plaza.services.appview.labels import LabelError, accepted_labelers, check_label
from tests.services.appview.conftest import DEADLINE_S
from tests.services.appview.feednet import FeedNet, feed_network


@pytest.fixture(scope="module")
def fnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FeedNet]:
    yield from feed_network(tmp_path_factory.mktemp("labels"))


def wait_labels(fnet: FeedNet, seq: int) -> dict[str, Any]:
    """Return the labeler's health entry once the app view has stored up to ``seq``."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        health = httpx.get(f"{fnet.net.appview}/xrpc/_health", timeout=10).json()
        entry: dict[str, Any] = health["labelers"][0]
        if entry["seq"] >= seq:
            return entry
        if time.monotonic() > deadline:
            raise AssertionError(f"labels stuck at {entry}, want {seq}")
        time.sleep(0.02)  # polling another server: a short interval, bounded above


def vals(view: Any) -> list[str]:
    return sorted(label.val for label in (view.labels or []))


def test_labels_on_posts_and_profiles(fnet: FeedNet) -> None:
    alice, a = fnet.net.client(0, "alice")
    bob, b = fnet.net.client(0, "bob")
    alice.follow(b["did"])
    post = bob.send_post("a post a labeler looks at")
    other = bob.send_post("another post")
    fnet.net.synced()
    lab = fnet.labeler
    forger = PrivateKey.generate()
    seq = lab.publish(
        lab.label(post.uri, "spam"),
        lab.label(b["did"], "bot"),
        lab.label(post.uri, "forged", key=forger),  # not the labeler's key
        {**lab.label(other.uri, "other-src"), "src": a["did"]},  # not this stream's labeler
        lab.label(other.uri, "expired", exp="2026-01-02T00:00:00.000Z"),
        {**lab.label(other.uri, "tampered"), "val": "changed"},  # signed bytes differ
        {"ver": 1, "src": lab.did},  # malformed
    )
    health = wait_labels(fnet, seq)
    assert health["dropped"] == 4

    timeline = alice.get_timeline()
    views = {item.post.uri: item.post for item in timeline.feed}
    assert vals(views[post.uri]) == ["spam"]
    assert vals(views[other.uri]) == []  # the expired label is not shown
    label = views[post.uri].labels[0]
    assert label.src == lab.did and label.uri == post.uri and label.ver == 1
    profile = alice.get_profile(b["did"])
    assert vals(profile) == ["bot"]
    assert vals(views[post.uri].author) == ["bot"]

    # the caller narrows the labelers it accepts; unknown labelers are ignored
    url = f"{fnet.net.appview}/xrpc/app.bsky.feed.getPosts"
    r = httpx.get(
        url, params={"uris": post.uri}, headers={"atproto-accept-labelers": "did:plc:nobody"}
    )
    assert r.status_code == 200 and r.json()["posts"][0]["labels"] == []
    assert r.headers["atproto-content-labelers"] == ""
    r = httpx.get(
        url, params={"uris": post.uri}, headers={"atproto-accept-labelers": f"{lab.did};redact"}
    )
    assert [x["val"] for x in r.json()["posts"][0]["labels"]] == ["spam"]
    assert r.headers["atproto-content-labelers"] == lab.did

    # a negation takes the label back
    seq = lab.publish(lab.label(post.uri, "spam", neg=True))
    wait_labels(fnet, seq)
    again = alice.get_posts([post.uri]).posts[0]
    assert vals(again) == []


def test_label_shapes() -> None:
    key = PrivateKey.generate()
    good = {
        "ver": 1,
        "src": "did:plc:abc",
        "uri": "at://did:plc:abc/app.bsky.feed.post/1",
        "val": "x",
        "cts": "2026-01-01T00:00:00.000Z",
        "sig": key.sign(b"-"),
    }
    assert check_label(good).val == "x"
    for bad in (
        {**good, "ver": 2},
        {**good, "src": "alice"},
        {**good, "uri": "https://example.com"},
        {**good, "val": "v" * 129},
        {**good, "cts": "yesterday"},
        {**good, "neg": "yes"},
        {**good, "cid": "not-a-cid"},
        {**good, "sig": b"short"},
        [good],
    ):
        with pytest.raises(LabelError):
            check_label(bad)
    assert accepted_labelers(None, ["did:a", "did:b"]) == ("did:a", "did:b")
    assert accepted_labelers("did:b;redact, did:c", ["did:a", "did:b"]) == ("did:b",)


def test_sdk_client_sends_accepted_labelers(fnet: FeedNet) -> None:
    carol, c = fnet.net.client(0, "carol")
    post = carol.send_post("labelled for the SDK")
    fnet.net.synced()
    seq = fnet.labeler.publish(fnet.labeler.label(post.uri, "sdk"))
    wait_labels(fnet, seq)
    mine = carol.with_labelers([fnet.labeler.did])
    assert vals(mine.get_posts([post.uri]).posts[0]) == ["sdk"]
    others = carol.with_labelers(["did:plc:someoneelse"])
    assert vals(others.get_posts([post.uri]).posts[0]) == []
    assert c["did"] == post.uri.split("/")[2]


def test_hiding_labels_hide_posts_and_warning_labels_show(fnet: FeedNet) -> None:
    viewer, _ = fnet.net.client(0, "viewer")
    dan, d = fnet.net.client(0, "dan")
    eve, e = fnet.net.client(0, "eve")
    viewer.follow(d["did"])
    viewer.follow(e["did"])
    hidden = dan.send_post("a post a labeler hides")
    warned = dan.send_post("a post a labeler warns about")
    gone = eve.send_post("a post by an account taken down")
    fnet.net.synced()
    lab = fnet.labeler
    seq = lab.publish(
        lab.label(hidden.uri, "!hide"),
        lab.label(warned.uri, "scam"),
        lab.label(e["did"], "!takedown"),
    )
    wait_labels(fnet, seq)
    uris = [hidden.uri, warned.uri, gone.uri]
    assert [p.uri for p in viewer.get_posts(uris).posts] == [warned.uri]
    assert vals(viewer.get_posts([warned.uri]).posts[0]) == ["scam"]
    timeline = {item.post.uri for item in viewer.get_timeline().feed}
    assert warned.uri in timeline and not timeline & {hidden.uri, gone.uri}
    url = f"{fnet.net.appview}/xrpc/app.bsky.feed.getPostThread"
    r = httpx.get(url, params={"uri": hidden.uri})
    assert r.status_code == 400 and r.json()["error"] == "NotFound"
    # a caller that does not accept the labeler sees the post
    r = httpx.get(
        f"{fnet.net.appview}/xrpc/app.bsky.feed.getPosts",
        params={"uris": hidden.uri},
        headers={"atproto-accept-labelers": "did:plc:nobody"},
    )
    assert [p["uri"] for p in r.json()["posts"]] == [hidden.uri]
