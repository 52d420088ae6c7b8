"""Three accounts on two PDSs, driven only by the atproto SDK through their own PDS; the
app view follows both firehoses and answers the reads the PDSs forward to it."""

from __future__ import annotations

import httpx
import pytest
from atproto_client.exceptions import BadRequestError

from atproto import Client, models
from tests.services.appview.conftest import Net


def set_profile(client: Client, did: str, **fields: str) -> None:
    client.com.atproto.repo.put_record(
        models.ComAtprotoRepoPutRecord.Data(
            repo=did,
            collection="app.bsky.actor.profile",
            rkey="self",
            record=models.AppBskyActorProfile.Record(**fields).model_dump(
                by_alias=True, exclude_none=True
            ),
        )
    )


@pytest.fixture(scope="module")
def people(net: Net) -> dict[str, tuple[Client, dict[str, str]]]:
    return {
        "alice": net.client(0, "alice"),
        "bob": net.client(0, "bob"),
        "carol": net.client(1, "carol"),
    }


def test_timeline_profiles_threads_and_author_feeds(
    net: Net, people: dict[str, tuple[Client, dict[str, str]]]
) -> None:
    alice, a = people["alice"]
    bob, b = people["bob"]
    carol, c = people["carol"]
    set_profile(alice, a["did"], display_name="Alice", description="hi")
    alice.follow(b["did"])
    alice.follow(c["did"])
    first = bob.send_post("bob's first post")
    second = carol.send_post("carol on the other PDS")
    alice.like(second.uri, second.cid)
    alice.repost(first.uri, first.cid)
    bob.like(second.uri, second.cid)
    ref = models.create_strong_ref(second)
    reply = bob.send_post(
        "bob replies to carol",
        reply_to=models.AppBskyFeedPost.ReplyRef(root=ref, parent=ref),
    )
    net.synced()

    timeline = alice.get_timeline()
    uris = [item.post.uri for item in timeline.feed]
    # Newest first: the reply, alice's repost of bob's post, carol's post, bob's post.
    assert uris[:4] == [reply.uri, first.uri, second.uri, first.uri]
    stamps = [item.post.indexed_at for item in timeline.feed]
    carol_post = next(i.post for i in timeline.feed if i.post.uri == second.uri)
    assert carol_post.like_count == 2 and carol_post.reply_count == 1
    assert carol_post.viewer is not None and carol_post.viewer.like is not None
    assert carol_post.author.handle == c["handle"]
    reposted = next(i for i in timeline.feed if i.reason is not None)
    assert reposted.post.uri == first.uri and reposted.reason.by.did == a["did"]
    replied = next(i for i in timeline.feed if i.post.uri == reply.uri)
    assert replied.reply is not None and replied.reply.parent.uri == second.uri
    assert len(stamps) == len(timeline.feed)

    profile = bob.get_profile(a["did"])
    assert profile.display_name == "Alice" and profile.follows_count == 2
    assert profile.viewer is not None and profile.viewer.following is None
    carol_profile = alice.get_profile(c["handle"])
    assert carol_profile.followers_count == 1 and carol_profile.posts_count == 1
    assert carol_profile.viewer.following is not None

    thread = carol.get_post_thread(second.uri)
    assert thread.thread.post.uri == second.uri
    assert [r.post.uri for r in thread.thread.replies] == [reply.uri]
    up = carol.get_post_thread(reply.uri, depth=0, parent_height=1)
    assert up.thread.parent.post.uri == second.uri and up.thread.replies == []

    feed = carol.get_author_feed(a["did"])
    assert [i.post.uri for i in feed.feed] == [first.uri]
    assert feed.feed[0].reason is not None
    no_replies = carol.get_author_feed(b["did"], filter="posts_no_replies")
    assert [i.post.uri for i in no_replies.feed] == [first.uri]

    posts = alice.get_posts([first.uri, second.uri])
    assert {p.uri for p in posts.posts} == {first.uri, second.uri}


def test_deletes_and_profile_edits_show(
    net: Net, people: dict[str, tuple[Client, dict[str, str]]]
) -> None:
    alice, _ = people["alice"]
    carol, c = people["carol"]
    post = carol.send_post("soon gone")
    like = alice.like(post.uri, post.cid)
    net.synced()
    assert alice.get_posts([post.uri]).posts[0].like_count == 1
    alice.delete_like(like.uri)
    net.synced()
    assert alice.get_posts([post.uri]).posts[0].like_count == 0
    carol.delete_post(post.uri)
    net.synced()
    assert alice.get_posts([post.uri]).posts == []
    with pytest.raises(BadRequestError):
        alice.get_post_thread(post.uri)
    set_profile(carol, c["did"], display_name="Carol")
    net.synced()
    assert alice.get_profile(c["did"]).display_name == "Carol"


def test_anonymous_and_bad_requests(
    net: Net, people: dict[str, tuple[Client, dict[str, str]]]
) -> None:
    _, b = people["bob"]
    r = httpx.get(f"{net.appview}/xrpc/app.bsky.actor.getProfile", params={"actor": b["did"]})
    assert r.status_code == 200 and r.json()["did"] == b["did"] and "viewer" not in r.json()
    r = httpx.get(f"{net.appview}/xrpc/app.bsky.feed.getTimeline")
    assert r.status_code == 401 and r.json()["error"] == "AuthenticationRequired"
    r = httpx.get(f"{net.appview}/xrpc/app.bsky.feed.getPosts", params={"uris": "nope"})
    assert r.status_code == 400 and r.json()["error"] == "InvalidRequest"
    r = httpx.get(
        f"{net.appview}/xrpc/app.bsky.feed.getTimeline",
        headers={"authorization": "Bearer not.a.token"},
    )
    assert r.status_code == 400 and r.json()["error"] == "InvalidToken"
    r = httpx.get(
        f"{net.appview}/xrpc/app.bsky.feed.getAuthorFeed", params={"actor": b["did"], "filter": "x"}
    )
    assert r.status_code == 400


def test_a_sync_event_makes_the_index_hold_the_imported_repository(net: Net) -> None:
    dave, d = net.client(0, "dave")
    kept = dave.send_post("kept")
    car = dave.com.atproto.sync.get_repo({"did": d["did"]})
    gone = dave.send_post("not in the imported copy")
    net.synced()
    assert len(dave.get_posts([kept.uri, gone.uri]).posts) == 2
    # importRepo of the older copy: the PDS announces it with #sync, and the app view
    # backfills to exactly that repository.
    dave.com.atproto.repo.import_repo(car)
    net.synced()
    assert [p.uri for p in dave.get_posts([kept.uri, gone.uri]).posts] == [kept.uri]
    assert dave.get_profile(d["did"]).posts_count == 1


def test_blocks_are_respected_in_timelines_threads_and_author_feeds(net: Net) -> None:
    erin, e = net.client(0, "erin")
    finn, f = net.client(1, "finn")
    erin.follow(f["did"])
    root = erin.send_post("erin asks")
    ref = models.create_strong_ref(root)
    answer = finn.send_post(
        "finn answers", reply_to=models.AppBskyFeedPost.ReplyRef(root=ref, parent=ref)
    )
    net.synced()
    assert answer.uri in [i.post.uri for i in erin.get_timeline().feed]
    assert [r.post.uri for r in erin.get_post_thread(root.uri).thread.replies] == [answer.uri]
    block = erin.app.bsky.graph.block.create(
        e["did"],
        models.AppBskyGraphBlock.Record(subject=f["did"], created_at=erin.get_current_time_iso()),
    )
    net.synced()
    assert answer.uri not in [i.post.uri for i in erin.get_timeline().feed]
    assert erin.get_post_thread(root.uri).thread.replies == []
    assert erin.get_post_thread(answer.uri).thread.py_type == "app.bsky.feed.defs#blockedPost"
    with pytest.raises(BadRequestError, match="BlockedActor"):
        erin.get_author_feed(f["did"])
    with pytest.raises(BadRequestError, match="BlockedByActor"):
        finn.get_author_feed(e["did"])
    assert erin.get_profile(f["did"]).viewer.blocking == block.uri
    assert finn.get_profile(e["did"]).viewer.blocked_by is True
    erin.app.bsky.graph.block.delete(e["did"], block.uri.rsplit("/", 1)[1])
    net.synced()
    assert answer.uri in [i.post.uri for i in erin.get_timeline().feed]
