"""The graph, notifications, interactions and search through the atproto SDK: accounts
on two PDSs, each driving the app view only through its own PDS's proxy (the live
network of ``conftest.py``; the app view on PostgreSQL when it is reachable)."""

from __future__ import annotations

import secrets

import httpx
import pytest
from atproto_client.exceptions import BadRequestError

from atproto import Client, client_utils, models
from tests.services.appview.conftest import Net

Person = tuple[Client, dict[str, str]]


def block(client: Client, me: str, subject: str) -> str:
    record = models.AppBskyGraphBlock.Record(
        subject=subject, created_at=client.get_current_time_iso()
    )
    return client.app.bsky.graph.block.create(me, record).uri


def dids(profiles: list[models.AppBskyActorDefs.ProfileView]) -> list[str]:
    return [p.did for p in profiles]


def test_follows_followers_pages_and_relationships(net: Net) -> None:
    alice, a = net.client(0, "alice")
    bob, b = net.client(0, "bob")
    carol, c = net.client(1, "carol")
    dave, d = net.client(1, "dave")
    alice.follow(b["did"])
    alice.follow(c["did"])
    bob.follow(a["did"])
    carol.follow(a["did"])
    dave.follow(a["did"])
    net.synced()

    follows = bob.get_follows(a["handle"])
    assert follows.subject.did == a["did"]
    assert dids(follows.follows) == [c["did"], b["did"]]  # newest first
    carol_view = follows.follows[0].viewer  # bob's view of carol: no follow either way
    assert carol_view is not None and carol_view.following is None and not carol_view.muted

    seen: list[str] = []
    cursor = None
    for _ in range(4):
        page = dave.get_followers(a["did"], cursor=cursor, limit=2)
        seen += dids(page.followers)
        cursor = page.cursor
        if cursor is None:
            break
    assert seen == [d["did"], c["did"], b["did"]]
    mine = next(p for p in dave.get_followers(a["did"]).followers if p.did == d["did"])
    assert mine.viewer is None or mine.viewer.following is None

    rel = alice.app.bsky.graph.get_relationships(
        {"actor": a["did"], "others": [b["did"], d["handle"], "nobody-here.test"]}
    )
    assert rel.actor == a["did"]
    by = {r.did if hasattr(r, "did") else r.actor: r for r in rel.relationships}
    assert by[b["did"]].following and by[b["did"]].followed_by
    assert by[d["did"]].following is None and by[d["did"]].followed_by
    assert by["nobody-here.test"].not_found
    with pytest.raises(BadRequestError) as err:
        alice.app.bsky.graph.get_relationships({"actor": "nobody-here.test"})
    assert err.value.response.content.error == "ActorNotFound"


def test_blocks_and_mutes(net: Net) -> None:
    alice, a = net.client(0, "alice")
    bob, b = net.client(0, "bob")
    carol, c = net.client(1, "carol")
    dave, d = net.client(1, "dave")
    for client in (bob, carol, dave):
        client.follow(a["did"])
    block_uri = block(carol, c["did"], d["did"])
    post = alice.send_post("something to like")
    net.synced()

    assert dids(carol.app.bsky.graph.get_blocks().blocks) == [d["did"]]
    # carol blocks dave: dave does not see her among alice's followers, bob does
    assert c["did"] not in dids(dave.get_followers(a["did"]).followers)
    assert c["did"] in dids(bob.get_followers(a["did"]).followers)
    assert dave.get_follows(c["did"]).follows == []
    rel = dave.app.bsky.graph.get_relationships({"actor": d["did"], "others": [c["did"]]})
    assert rel.relationships[0].blocked_by == block_uri
    rel = carol.app.bsky.graph.get_relationships({"actor": c["did"], "others": [d["did"]]})
    assert rel.relationships[0].blocking == block_uri

    # mutes: private to the app view, set through the PDS's proxy
    alice.mute(b["did"])
    assert dids(alice.app.bsky.graph.get_mutes().mutes) == [b["did"]]
    assert alice.get_profile(b["did"]).viewer.muted is True
    bob.like(post.uri, post.cid)
    carol.like(post.uri, post.cid)
    net.synced()
    likers = [
        n.author.did
        for n in alice.app.bsky.notification.list_notifications().notifications
        if n.reason == "like"
    ]
    assert likers == [c["did"]]
    assert b["did"] not in dids(alice.app.bsky.actor.get_suggestions().actors)
    alice.unmute(b["did"])
    assert alice.app.bsky.graph.get_mutes().mutes == []
    likers = [
        n.author.did
        for n in alice.app.bsky.notification.list_notifications().notifications
        if n.reason == "like"
    ]
    assert likers == [c["did"], b["did"]]
    with pytest.raises(BadRequestError):
        alice.mute(a["did"])
    with pytest.raises(BadRequestError):
        alice.mute("nobody-here.test")


def test_notifications_reasons_unread_and_seen(net: Net) -> None:
    alice, a = net.client(0, "alice")
    bob, b = net.client(0, "bob")
    carol, c = net.client(1, "carol")
    post = carol.send_post("carol writes")
    alice.like(post.uri, post.cid)
    alice.repost(post.uri, post.cid)
    bob.follow(c["did"])
    ref = models.create_strong_ref(post)
    reply = bob.send_post(
        "bob replies", reply_to=models.AppBskyFeedPost.ReplyRef(root=ref, parent=ref)
    )
    mention = alice.send_post(client_utils.TextBuilder().text("hey ").mention("carol", c["did"]))
    quote = bob.send_post("quoting", embed=models.AppBskyEmbedRecord.Main(record=ref))
    net.synced()

    notes = carol.app.bsky.notification
    got = notes.list_notifications().notifications
    assert [n.reason for n in got] == ["quote", "mention", "reply", "follow", "repost", "like"]
    assert not any(n.is_read for n in got)
    by = {n.reason: n for n in got}
    assert by["like"].reason_subject == post.uri and by["like"].author.did == a["did"]
    assert by["reply"].uri == reply.uri and by["reply"].record.text == "bob replies"
    assert by["mention"].uri == mention.uri and by["mention"].reason_subject is None
    assert by["quote"].uri == quote.uri and by["quote"].reason_subject == post.uri
    assert by["follow"].author.did == b["did"]
    assert notes.get_unread_count().count == 6

    pages: list[str] = []
    cursor = None
    for _ in range(5):
        page = notes.list_notifications({"limit": 4, "cursor": cursor})
        pages += [n.uri for n in page.notifications]
        cursor = page.cursor
        if cursor is None:
            break
    assert pages == [n.uri for n in got]
    only = notes.list_notifications({"reasons": ["like", "follow"]}).notifications
    assert [n.reason for n in only] == ["follow", "like"]

    notes.update_seen({"seen_at": carol.get_current_time_iso()})
    assert notes.get_unread_count().count == 0
    after = notes.list_notifications()
    assert all(n.is_read for n in after.notifications) and after.seen_at is not None
    bob.like(post.uri, post.cid)
    net.synced()
    assert notes.get_unread_count().count == 1
    assert not notes.list_notifications().notifications[0].is_read
    alice.delete_like(by["like"].uri)
    net.synced()
    likes = notes.list_notifications({"reasons": ["like"]}).notifications
    assert [n.author.did for n in likes] == [b["did"]]


def test_likes_reposts_and_actor_likes(net: Net) -> None:
    alice, a = net.client(0, "alice")
    bob, b = net.client(0, "bob")
    carol, _ = net.client(1, "carol")
    post = carol.send_post("likeable")  # liked, reposted and quoted
    alice.like(post.uri, post.cid)
    bob.like(post.uri, post.cid)
    bob.repost(post.uri, post.cid)
    ref = models.create_strong_ref(post)
    quotes = [
        who.send_post(text, embed=models.AppBskyEmbedRecord.Main(record=ref))
        for who, text in ((alice, "quote one"), (bob, "quote two"))
    ]
    net.synced()

    got = carol.app.bsky.feed.get_quotes({"uri": post.uri})
    assert [p.uri for p in got.posts] == [quotes[1].uri, quotes[0].uri]
    assert got.posts[0].embed.record.uri == post.uri
    page = carol.app.bsky.feed.get_quotes({"uri": post.uri, "limit": 1})
    rest = carol.app.bsky.feed.get_quotes({"uri": post.uri, "limit": 1, "cursor": page.cursor})
    assert [p.uri for p in rest.posts] == [quotes[0].uri]
    same = carol.app.bsky.feed.get_quotes({"uri": post.uri, "cid": post.cid})
    assert len(same.posts) == 2 and same.cid == post.cid
    assert carol.app.bsky.feed.get_quotes({"uri": post.uri, "cid": quotes[0].cid}).posts == []

    likes = alice.get_likes(post.uri)
    assert likes.uri == post.uri
    assert [like.actor.did for like in likes.likes] == [b["did"], a["did"]]
    assert likes.likes[0].created_at and likes.likes[0].indexed_at
    page = alice.get_likes(post.uri, limit=1)
    assert len(page.likes) == 1 and page.cursor is not None
    rest = alice.get_likes(post.uri, cursor=page.cursor, limit=1)
    assert [x.actor.did for x in rest.likes] == [a["did"]]
    assert alice.get_likes(post.uri, cid=post.cid).cid == post.cid
    reposted = carol.get_reposted_by(post.uri)
    assert dids(reposted.reposted_by) == [b["did"]]

    feed = alice.app.bsky.feed.get_actor_likes({"actor": a["did"]}).feed
    assert [i.post.uri for i in feed] == [post.uri]
    assert feed[0].post.viewer.like is not None
    with pytest.raises(BadRequestError):
        bob.app.bsky.feed.get_actor_likes({"actor": a["did"]})


def test_search_posts_and_actors(net: Net) -> None:
    word = "zq" + secrets.token_hex(4)
    alice, a = net.client(0, "srch")
    bob, b = net.client(0, "srch")
    carol, c = net.client(1, "srch")
    alice.com.atproto.repo.put_record(
        models.ComAtprotoRepoPutRecord.Data(
            repo=a["did"],
            collection="app.bsky.actor.profile",
            rkey="self",
            record={"$type": "app.bsky.actor.profile", "displayName": f"Wonderland {word}"},
        )
    )
    first = alice.send_post(f"the {word} first words")
    second = bob.send_post(f"second post mentions {word} too")
    carol.send_post("nothing to find here")
    liked = carol.send_post(f"popular {word} post")
    alice.like(liked.uri, liked.cid)
    bob.like(liked.uri, liked.cid)
    net.synced()

    search = alice.app.bsky.feed.search_posts
    latest = search({"q": word}).posts
    assert [p.uri for p in latest] == [liked.uri, second.uri, first.uri]
    top = search({"q": word, "sort": "top"}).posts
    assert top[0].uri == liked.uri and top[0].like_count == 2
    assert [p.uri for p in search({"q": f'"{word} first"'}).posts] == [first.uri]
    assert [p.uri for p in search({"q": f"{word} from:{b['handle']}"}).posts] == [second.uri]
    assert [p.uri for p in search({"q": word, "author": a["did"]}).posts] == [first.uri]
    page = search({"q": word, "limit": 2})
    assert len(page.posts) == 2 and page.cursor
    rest = search({"q": word, "limit": 2, "cursor": page.cursor})
    assert [p.uri for p in rest.posts] == [first.uri] and rest.cursor is None

    actors = bob.app.bsky.actor.search_actors({"q": word}).actors
    assert dids(actors) == [a["did"]] and actors[0].display_name == f"Wonderland {word}"
    assert dids(bob.app.bsky.actor.search_actors({"q": "wonderl " + word[:5]}).actors) == [a["did"]]
    ahead = bob.app.bsky.actor.search_actors_typeahead({"q": a["handle"][:9]}).actors
    assert dids(ahead) == [a["did"]]

    # a block hides both ways, in search too
    block(alice, a["did"], c["did"])
    net.synced()
    assert carol.app.bsky.actor.search_actors({"q": word}).actors == []
    assert liked.uri not in [p.uri for p in alice.app.bsky.feed.search_posts({"q": word}).posts]

    # record filters: language, tags, mentions, links
    text = (
        client_utils.TextBuilder()
        .text(f"{word} filtered by ")
        .mention("bob", b["did"])
        .text(" ")
        .tag("#Plaza", "Plaza")
        .text(" ")
        .link("a link", "https://www.example.com/page")
    )
    tagged = bob.send_post(text, langs=["pt-BR"])
    net.synced()

    def only(**params: str | list[str]) -> list[str]:
        return [p.uri for p in bob.app.bsky.feed.search_posts({"q": word, **params}).posts]

    assert only(lang="pt") == [tagged.uri]
    english = only(lang="en")  # the SDK marks the other posts English
    assert english and tagged.uri not in english
    assert only(tag=["plaza"]) == [tagged.uri] and only(tag=["plaza", "other"]) == []
    assert only(mentions=b["handle"]) == [tagged.uri] and only(mentions=a["did"]) == []
    assert only(domain="example.com") == [tagged.uri] and only(domain="example.org") == []
    assert only(url="https://www.example.com/page/") == [tagged.uri]

    alice.delete_post(first.uri)
    net.synced()
    assert first.uri not in [p.uri for p in bob.app.bsky.feed.search_posts({"q": word}).posts]


def test_suggestions(net: Net) -> None:
    alice, a = net.client(0, "sugg")
    bob, b = net.client(0, "sugg")
    _, c = net.client(1, "sugg")
    bob.follow(c["did"])
    alice.follow(b["did"])
    net.synced()
    suggested = dids(alice.app.bsky.actor.get_suggestions({"limit": 100}).actors)
    assert c["did"] in suggested
    assert a["did"] not in suggested and b["did"] not in suggested
    anon = httpx.get(f"{net.appview}/xrpc/app.bsky.actor.getSuggestions", params={"limit": 1})
    assert (
        anon.status_code == 200 and len(anon.json()["actors"]) == 1 and anon.json()["cursor"] == "1"
    )


@pytest.mark.parametrize(
    ("method", "params", "status", "error"),
    [
        ("app.bsky.graph.getBlocks", {}, 401, "AuthenticationRequired"),
        ("app.bsky.notification.listNotifications", {}, 401, "AuthenticationRequired"),
        ("app.bsky.graph.getFollows", {}, 400, "InvalidRequest"),
        ("app.bsky.graph.getFollows", {"actor": "nobody-here.test"}, 400, "InvalidRequest"),
        (
            "app.bsky.graph.getFollowers",
            {"actor": "did:plc:x", "cursor": "x:y"},
            400,
            "InvalidRequest",
        ),
        (
            "app.bsky.graph.getFollowers",
            {"actor": "did:plc:x", "limit": "0"},
            400,
            "InvalidRequest",
        ),
        (
            "app.bsky.graph.getList",
            {"list": "at://did:plc:x/app.bsky.feed.post/1"},
            400,
            "InvalidRequest",
        ),
        (
            "app.bsky.graph.getLists",
            {"actor": "did:plc:x", "purposes": "nope"},
            400,
            "InvalidRequest",
        ),
        ("app.bsky.feed.searchPosts", {}, 400, "InvalidRequest"),
        ("app.bsky.feed.searchPosts", {"q": "!!!"}, 400, "BadQueryString"),
        ("app.bsky.feed.searchPosts", {"q": "a", "sort": "best"}, 400, "InvalidRequest"),
        ("app.bsky.feed.searchPosts", {"q": "a", "lang": "e n"}, 400, "InvalidRequest"),
        ("app.bsky.feed.searchPosts", {"q": "a", "url": "example.com"}, 400, "InvalidRequest"),
        ("app.bsky.feed.searchPosts", {"q": "a", "since": "yesterday"}, 400, "InvalidRequest"),
        ("app.bsky.feed.getLikes", {"uri": "nope"}, 400, "InvalidRequest"),
        (
            "app.bsky.feed.getLikes",
            {"uri": "at://did:plc:x/app.bsky.feed.post/1", "cid": "x"},
            400,
            "InvalidRequest",
        ),
        ("app.bsky.actor.searchActors", {"q": "a", "cursor": "99999999"}, 400, "InvalidRequest"),
    ],
)
def test_bad_requests(
    net: Net, method: str, params: dict[str, str], status: int, error: str
) -> None:
    r = httpx.get(f"{net.appview}/xrpc/{method}", params=params)
    assert (r.status_code, r.json()["error"]) == (status, error), r.text


def test_procedures_refuse_bad_bodies(net: Net) -> None:
    alice, _ = net.client(0, "proc")
    with pytest.raises(BadRequestError):
        alice.app.bsky.notification.update_seen({"seen_at": "not a time"})
    r = httpx.post(f"{net.appview}/xrpc/app.bsky.graph.muteActor", json={"actor": "x.test"})
    assert r.status_code == 401


def test_lists_and_their_items(net: Net) -> None:
    alice, a = net.client(0, "list")
    bob, b = net.client(0, "list")
    carol, c = net.client(1, "list")
    now = alice.get_current_time_iso
    curate = alice.app.bsky.graph.list.create(
        a["did"],
        models.AppBskyGraphList.Record(
            name="Friends",
            purpose="app.bsky.graph.defs#curatelist",
            description="people I like",
            created_at=now(),
        ),
    )
    mod = alice.app.bsky.graph.list.create(
        a["did"],
        models.AppBskyGraphList.Record(
            name="Spam", purpose="app.bsky.graph.defs#modlist", created_at=now()
        ),
    )
    items = [
        alice.app.bsky.graph.listitem.create(
            a["did"],
            models.AppBskyGraphListitem.Record(list=curate.uri, subject=who, created_at=now()),
        )
        for who in (b["did"], c["did"])
    ]
    net.synced()

    lists = carol.app.bsky.graph.get_lists({"actor": a["handle"]}).lists
    assert [x.uri for x in lists] == [mod.uri, curate.uri]
    friends = lists[1]
    assert friends.name == "Friends" and friends.purpose == "app.bsky.graph.defs#curatelist"
    assert friends.description == "people I like" and friends.list_item_count == 2
    assert friends.creator.did == a["did"] and friends.cid == curate.cid
    only = carol.app.bsky.graph.get_lists({"actor": a["did"], "purposes": ["modlist"]}).lists
    assert [x.uri for x in only] == [mod.uri]

    got = bob.app.bsky.graph.get_list({"list": curate.uri})
    assert got.list.uri == curate.uri and got.list.list_item_count == 2
    assert [(i.uri, i.subject.did) for i in got.items] == [
        (items[1].uri, c["did"]),
        (items[0].uri, b["did"]),
    ]
    first = bob.app.bsky.graph.get_list({"list": curate.uri, "limit": 1})
    assert len(first.items) == 1 and first.cursor
    rest = bob.app.bsky.graph.get_list({"list": curate.uri, "limit": 1, "cursor": first.cursor})
    assert [i.subject.did for i in rest.items] == [b["did"]]

    alice.app.bsky.graph.listitem.delete(a["did"], items[0].uri.rsplit("/", 1)[1])
    net.synced()
    got = bob.app.bsky.graph.get_list({"list": curate.uri})
    assert [i.subject.did for i in got.items] == [c["did"]] and got.list.list_item_count == 1
    with pytest.raises(BadRequestError) as err:
        bob.app.bsky.graph.get_list({"list": curate.uri + "x"})
    assert err.value.response.content.error == "NotFound"
