"""Labels on lists and notifications, and on the profiles in graph lists, read with the
atproto SDK through the PDS (the labeler network of ``feednet.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from atproto import models
from tests.services.appview.feednet import FeedNet, feed_network
from tests.services.appview.test_labels import vals, wait_labels


@pytest.fixture(scope="module")
def fnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FeedNet]:
    yield from feed_network(tmp_path_factory.mktemp("graphlabels"))


def test_labels_on_lists_notifications_and_followers(fnet: FeedNet) -> None:
    alice, a = fnet.net.client(0, "alice")
    bob, b = fnet.net.client(0, "bob")
    made = alice.app.bsky.graph.list.create(
        a["did"],
        models.AppBskyGraphList.Record(
            name="Labelled",
            purpose="app.bsky.graph.defs#curatelist",
            created_at=alice.get_current_time_iso(),
        ),
    )
    follow = bob.follow(a["did"])
    fnet.net.synced()
    lab = fnet.labeler
    wait_labels(
        fnet,
        lab.publish(
            lab.label(made.uri, "list-label"),
            lab.label(follow.uri, "follow-label"),
            lab.label(b["did"], "bob-label"),
        ),
    )

    lists = bob.app.bsky.graph.get_lists({"actor": a["did"]}).lists
    assert vals(lists[0]) == ["list-label"]
    assert vals(bob.app.bsky.graph.get_list({"list": made.uri}).list) == ["list-label"]
    notes = alice.app.bsky.notification.list_notifications().notifications
    assert [(n.reason, vals(n)) for n in notes] == [("follow", ["follow-label"])]
    assert vals(notes[0].author) == ["bob-label"]
    followers = alice.get_followers(a["did"]).followers
    assert [vals(p) for p in followers] == [["bob-label"]]
