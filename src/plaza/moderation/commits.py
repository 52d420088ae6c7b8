"""Posts read from firehose frames (``com.atproto.sync.subscribeRepos``), verified.

:func:`read_posts` takes a run of frames in stream order, as a WebSocket firehose
(:class:`~plaza.moderation.firehose.PostFeed`) or a bus partition
(:class:`~plaza.moderation.bus_worker.LabelerWorker`) delivers them: it skips every
frame at or below the caller's cursor, verifies each ``#commit`` against its account's
key from the directory (:func:`plaza.atproto.sync.verify_commit_body`; a signature that
fails refreshes the key once) and returns the ``app.bsky.feed.post`` records the
commits create, as :class:`~plaza.moderation.moderator.Post`, with the sequence number
of the last frame read. A frame that fails its checks is dropped and counted.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from plaza.atproto import cbor
from plaza.atproto.errors import AtprotoError, BadSignatureError
from plaza.atproto.sync import VerifiedCommit, verify_commit_body
from plaza.errors import PlazaError
from plaza.moderation.moderator import Post
from plaza.services.identities import Identities

log = logging.getLogger("plaza.labeler")

MAX_TEXT: Final = 3000
POST: Final = "app.bsky.feed.post"


@dataclass(frozen=True)
class Posts:
    """What a run of frames holds: its new posts, the last sequence number read (the
    cursor when nothing was new) and how many frames were dropped."""

    posts: list[Post]
    last: int
    dropped: int


def posts_of(verified: VerifiedCommit) -> list[Post]:
    """The posts a verified commit creates (records that do not decode are skipped)."""
    out = []
    for op in verified.ops:
        if op.action != "create" or not op.path.startswith(POST + "/") or op.cid is None:
            continue
        block = verified.record_block(op)
        try:
            record = cbor.decode(block) if block is not None else None
        except AtprotoError:
            continue
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            continue
        uri = f"at://{verified.did}/{op.path}"
        out.append(Post(uri, str(op.cid), verified.did, record["text"][:MAX_TEXT]))
    return out


async def read_posts(frames: Sequence[bytes], identities: Identities, *, after: int) -> Posts:
    """The new posts of ``frames`` past the cursor ``after`` (see the module docstring)."""
    posts: list[Post] = []
    last, dropped = after, 0
    for frame in frames:
        try:
            header, end = cbor.decode_first(frame)
            body = cbor.decode(frame[end:])
        except AtprotoError:
            dropped += 1
            continue
        if not isinstance(header, dict) or not isinstance(body, dict):
            dropped += 1
            continue
        seq = body.get("seq")
        if type(seq) is not int or seq <= last:
            continue
        last = seq
        if header.get("t") == "#commit":
            verified = await _verified(body, identities)
            if verified is None:
                dropped += 1
            else:
                posts += posts_of(verified)
    return Posts(posts, last, dropped)


async def _verified(body: dict[str, Any], identities: Identities) -> VerifiedCommit | None:
    did = body.get("repo")
    if not isinstance(did, str):
        return None
    try:
        ident = await identities.get(did)
        if ident.key is None:
            raise PlazaError(f"{did[:80]} has no signing key")
        try:
            return verify_commit_body(body, ident.key, require_prev_data=False)
        except BadSignatureError:
            ident = await identities.refresh(did, force=True)
            return verify_commit_body(body, ident.key, require_prev_data=False)
    except (AtprotoError, PlazaError) as exc:
        log.info("commit from %s dropped: %s", did[:80], exc)
        return None
