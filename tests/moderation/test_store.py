"""The labeler's store and core on SQLite and PostgreSQL: the signed label log, current
labels and negation, queryLabels patterns, strikes and the account label, review items,
cursors, and a reopened store keeping its schema version."""

from __future__ import annotations

import pytest

from plaza.atproto.crypto import PrivateKey
from plaza.db import connect, schema_version
from plaza.errors import InvalidInputError, NotFoundError
from plaza.moderation.labeler import Labeler
from plaza.moderation.labels import verify_label
from plaza.moderation.moderator import LABEL, NONE, REVIEW, Decision, Post
from plaza.moderation.schema import MIGRATIONS
from plaza.moderation.store import LabelerStore

DID = "did:plc:labeler"


def decision(i: int, action: str, did: str = "did:plc:author", val: str = "spam") -> Decision:
    post = Post(f"at://{did}/app.bsky.feed.post/{i}", None, did, f"text {i}")
    return Decision(post, 0.99, action, val, "test")


def test_store_and_core(db_url: str) -> None:
    key = PrivateKey.generate()
    store = LabelerStore(connect(db_url))
    lab = Labeler(store, DID, key, account_strikes=2, clock=lambda: 1_700_000_000.0)
    seqs = lab.apply([decision(1, LABEL), decision(2, NONE), decision(3, REVIEW)])
    assert seqs == [1]
    seqs = lab.apply([decision(4, LABEL, val="scam"), decision(1, LABEL)])  # 1 already on
    assert seqs == [2, 3]  # the post, then the account (second strike)
    rows = store.labels_after(0)
    assert [(s, x["uri"], x["val"]) for s, x in rows] == [
        (1, "at://did:plc:author/app.bsky.feed.post/1", "spam"),
        (2, "at://did:plc:author/app.bsky.feed.post/4", "scam"),
        (3, "did:plc:author", "spam"),
    ]
    assert all(verify_label(x, key.public_key) for _, x in rows)
    assert rows[0][1]["cts"] == "2023-11-14T22:13:20.000Z" and rows[0][1]["neg"] is False

    assert [x["val"] for _, x in store.query_labels(["at://did:plc:author/*"], 0, 10)] == [
        "spam", "scam",
    ]  # fmt: skip
    assert store.query_labels(["at://did:plc:author/app.bsky.feed.post/_"], 0, 10) == []
    assert [s for s, _ in store.query_labels(["*"], 1, 10)] == [2, 3]

    (item,) = store.reviews()
    assert item.kind == "classifier" and item.subject.endswith("/3")
    with pytest.raises(InvalidInputError):
        lab.resolve(item.id, "label", "nonsense")
    with pytest.raises(NotFoundError):
        lab.resolve(999, "dismiss")
    assert lab.resolve(item.id, "dismiss").status == "dismissed"

    appeal = lab.report(
        "did:plc:author",
        {"$type": "com.atproto.admin.defs#repoRef", "did": "did:plc:author"},
        "com.atproto.moderation.defs#reasonAppeal",
        "not a spammer",
    )
    assert lab.resolve(appeal, "reverse").resolution == "negated spam"
    assert not store.current("did:plc:author", "spam")
    assert store.labels_after(3)[0][1]["neg"] is True
    assert store.query_labels(["did:plc:author"], 0, 10) == []

    store.set_cursor("firehose:x", 7)
    store.set_cursor("firehose:x", 9)
    assert store.cursor("firehose:x") == 9 and store.cursor("other") == 0
    store.close()
    again = LabelerStore(connect(db_url))
    assert schema_version(again.db, MIGRATIONS.store) == MIGRATIONS.latest
    assert again.last_seq() == 4
    again.close()
