"""Records stored by what the index holds of them come back byte for byte."""

from __future__ import annotations

from plaza.atproto import cbor
from plaza.atproto.cid import CID
from plaza.services.appview.compact import (
    DERIVED,
    REST,
    follow_block,
    note_record,
    pack_post,
    subject_block,
    unpack_post,
)
from plaza.services.appview.times import parse_time_us

POST = "app.bsky.feed.post"
WHEN = "2026-03-04T05:06:07.089Z"
DID = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"


def test_a_post_keeps_only_what_its_text_and_time_do_not_give_back() -> None:
    value = {"$type": POST, "text": "héllo wörld", "createdAt": WHEN, "langs": ["en"]}
    block = cbor.encode(value)
    sort_at = parse_time_us(WHEN)
    stored = pack_post(block, value, sort_at)
    assert stored.startswith(REST) and len(stored) < len(block) - len("héllo wörld")
    assert cbor.decode(stored[1:]) == {"langs": ["en"]}
    assert unpack_post(stored, "héllo wörld", sort_at) == block


def test_a_time_written_otherwise_or_a_clamped_one_is_kept() -> None:
    for when, sort_at in (
        ("2026-03-04T05:06:07Z", parse_time_us("2026-03-04T05:06:07Z")),
        (WHEN, parse_time_us(WHEN) - 5),
    ):
        value = {"$type": POST, "text": "t", "createdAt": when}
        block = cbor.encode(value)
        stored = pack_post(block, value, sort_at)
        assert cbor.decode(stored[1:]) == {"createdAt": when}
        assert unpack_post(stored, "t", sort_at) == block


def test_a_block_that_does_not_come_back_is_kept_whole() -> None:
    value = {"$type": POST, "text": "t", "createdAt": WHEN}
    block = cbor.encode(value)
    assert pack_post(block + b"", {**value, "text": "other"}, parse_time_us(WHEN)) == block
    assert unpack_post(block, "ignored", 0) == block


def test_likes_reposts_and_follows_rebuild_their_record_or_keep_it() -> None:
    cid = CID.compute(b"subject")
    like = {
        "$type": "app.bsky.feed.like",
        "subject": {"uri": f"at://{DID}/{POST}/3kaaaaaaaaaa2", "cid": str(cid)},
        "createdAt": WHEN,
    }
    block = cbor.encode(like)
    rebuilt = subject_block(
        "app.bsky.feed.like", DID, "3kaaaaaaaaaa2", cid.raw, parse_time_us(WHEN)
    )
    assert rebuilt == block and note_record(block, rebuilt) == DERIVED
    odd = cbor.encode({**like, "via": "x"})
    assert note_record(odd, rebuilt) == odd
    follow = cbor.encode({"$type": "app.bsky.graph.follow", "subject": DID, "createdAt": WHEN})
    assert follow_block(DID, parse_time_us(WHEN)) == follow
