"""Storing records by what the index already holds of them (sans-IO).

A record block is what views return and what a CID hashes, so it must come back byte
for byte. Much of it is in the index already, so the stored form leaves that out
whenever putting it back gives the same bytes (DAG-CBOR is canonical: the same value
encodes the same way):

- a post keeps its text in ``posts.text`` (search reads it there too) and its
  ``createdAt`` as ``sort_at`` when that is the same instant written the usual way
  (milliseconds, ``Z``); ``posts.record`` holds the rest of the record, a ``0x00``
  byte and the DAG-CBOR of the other fields (``langs``, ``reply``, ``embed``,
  ``facets``...). A post whose block does not come back that way (a ``createdAt``
  written otherwise stays among the other fields, so this is rare) keeps the block
  itself; a block is a CBOR map and never starts with ``0x00``.
- a like's, repost's or follow's notification keeps no record (an empty one) when the
  record is exactly its ``$type``, subject and ``createdAt``: the like, repost or
  follow row rebuilds it. A notification caused by a post keeps none either: it is the
  post's.
"""

from __future__ import annotations

from typing import Any, Final

from plaza.atproto import cbor
from plaza.atproto.cid import CID
from plaza.services.appview.times import format_time_us

POST: Final = "app.bsky.feed.post"
FOLLOW: Final = "app.bsky.graph.follow"
REST: Final = b"\x00"  # the first byte of a post stored without its text and time
DERIVED: Final = b""  # a notification's record, rebuilt from the row that caused it


def pack_post(block: bytes, value: dict[str, Any], sort_at: int) -> bytes:
    """What ``posts.record`` stores of a post (see the module docstring)."""
    rest = {k: v for k, v in value.items() if k not in ("$type", "text")}
    when = format_time_us(sort_at)
    if rest.get("createdAt") == when:
        del rest["createdAt"]
    packed = REST + cbor.encode(rest)
    # What unpack_post gives back, without decoding ``packed`` again (a data-model value
    # decodes to itself): the rest, the $type, the text and the time put back.
    back = {**rest, "$type": POST, "text": value.get("text", "")}
    back.setdefault("createdAt", when)
    return packed if cbor.encode(back) == block else block


def unpack_post(stored: bytes, text: str, sort_at: int) -> bytes:
    """A post's block from its stored parts."""
    if not stored.startswith(REST):
        return stored
    value = cbor.decode(stored[1:])
    value["$type"] = POST
    value["text"] = text
    value.setdefault("createdAt", format_time_us(sort_at))
    return cbor.encode(value)


def subject_block(
    collection: str, subject_did: str, subject_rkey: str, subject_cid: bytes, created_us: int
) -> bytes:
    """The like or repost record its row describes."""
    return cbor.encode(
        {
            "$type": collection,
            "subject": {
                "uri": f"at://{subject_did}/{POST}/{subject_rkey}",
                "cid": str(CID(subject_cid)),
            },
            "createdAt": format_time_us(created_us),
        }
    )


def follow_block(subject_did: str, created_us: int) -> bytes:
    """The follow record its row describes."""
    return cbor.encode(
        {"$type": FOLLOW, "subject": subject_did, "createdAt": format_time_us(created_us)}
    )


def note_record(block: bytes, rebuilt: bytes) -> bytes:
    """What a like's, repost's or follow's notification stores: nothing when its row
    rebuilds the record, else the record."""
    return DERIVED if rebuilt == block else block
