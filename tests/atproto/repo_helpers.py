"""Shared helpers for the repository tests: TIDs, records and a minimal host."""

from __future__ import annotations

from typing import Any

from plaza.atproto.cid import CID
from plaza.atproto.crypto import ES256K, PrivateKey
from plaza.atproto.repo import Repo, Write

DID = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
POST = "app.bsky.feed.post"
LIKE = "app.bsky.feed.like"
_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"


def tid(n: int) -> str:
    """A TID for microsecond ``n`` after 2023-11-14 (clock id 0)."""
    value = (1_700_000_000_000_000 + n) << 10
    out = []
    for _ in range(13):
        value, r = divmod(value, 32)
        out.append(_ALPHABET[r])
    return "".join(reversed(out))


def post(i: int) -> dict[str, Any]:
    return {"$type": POST, "text": f"post number {i}", "createdAt": "2024-05-01T12:00:00.000Z"}


class Host:
    """The minimum a host does with commit results: store the blocks, move the head."""

    def __init__(self, key: PrivateKey | None = None) -> None:
        self.key = key or PrivateKey.generate(ES256K)
        self.blocks: dict[CID, bytes] = {}
        self.clock = 0
        result = Repo.create(DID, self.key, self.next_rev(), self.blocks)
        self.blocks.update(result.new_blocks)
        self.repo = result.repo

    def next_rev(self) -> str:
        self.clock += 1
        return tid(self.clock)

    def write(self, *writes: Write) -> Any:
        result = self.repo.apply_writes(list(writes), self.key, self.next_rev())
        self.blocks.update(result.new_blocks)
        self.repo = result.repo
        return result
