"""What the repository manager adds around the core: a block source, CARs, inputs.

- :class:`BlockCache` and :class:`StoreSource`: block bytes by CID in memory, in
  front of one repository's blocks in the store (the block source the core's
  :func:`plaza.atproto.repo.apply_writes` reads);
- :func:`car_bytes`: a CAR with one root;
- :func:`find_blobs`: the blob CIDs a record references;
- :func:`parse_cid`, :func:`check_collection`, :func:`check_rkey`: request inputs,
  refused with ``InvalidRequest``.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from typing import Any

from plaza.atproto import syntax
from plaza.atproto.car import write_car
from plaza.atproto.cid import CID
from plaza.atproto.errors import AtprotoError
from plaza.services.pds.errors import InvalidRequestError


class BlockCache:
    """Recently read block bytes by CID, bounded (LRU by insertion).

    Blocks are content-addressed, so one cache serves every repository. It sits under
    the decoded-node cache: a node evicted from that one is decoded again from here
    rather than read again from SQL.
    """

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self._size = 0
        self._blocks: collections.OrderedDict[CID, bytes] = collections.OrderedDict()

    def get(self, cid: CID) -> bytes | None:
        return self._blocks.get(cid)

    def put(self, cid: CID, data: bytes) -> None:
        if cid in self._blocks:
            return
        self._blocks[cid] = data
        self._size += len(data)
        while self._size > self.max_bytes:
            _, old = self._blocks.popitem(last=False)
            self._size -= len(old)


class StoreSource:
    """The store's blocks of one repository as an MST block source, behind the cache."""

    __slots__ = ("cache", "did", "store")

    def __init__(self, store: Any, did: str, cache: BlockCache) -> None:
        self.store = store
        self.did = did
        self.cache = cache

    def get(self, cid: CID, /) -> bytes | None:
        data = self.cache.get(cid)
        if data is None:
            data = self.store.get_block(self.did, cid.raw)
            if data is not None:
                self.cache.put(cid, data)
        return data


def car_bytes(root: CID, blocks: Iterable[tuple[CID, bytes]]) -> bytes:
    """A CARv1 file with one root and the given blocks in order."""
    return write_car([root], blocks)


def find_blobs(value: Any) -> list[CID]:
    """Every blob CID a record references, however deep, in document order.

    A blob reference is a map with ``"$type": "blob"`` and a CID ``ref``; the walk
    keeps its own stack, so no nesting depth the data model admits escapes it.
    """
    out: list[CID] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if type(item) is dict:
            if item.get("$type") == "blob" and type(item.get("ref")) is CID:
                out.append(item["ref"])
                continue
            children = list(item.values())
        elif type(item) is list:
            children = item
        else:
            continue
        stack.extend(v for v in reversed(children) if type(v) in (dict, list))
    return out


def parse_cid(value: Any, name: str) -> CID:
    if not isinstance(value, str):
        raise InvalidRequestError(f"{name} must be a CID string")
    try:
        return CID.decode(value)
    except AtprotoError as exc:
        raise InvalidRequestError(f"{name} is not a valid CID: {exc.message}") from exc


def check_collection(collection: str) -> str:
    try:
        return syntax.validate_nsid(collection)
    except AtprotoError as exc:
        raise InvalidRequestError(f"Invalid collection: {exc.message}") from exc


def check_rkey(rkey: str) -> str:
    try:
        return syntax.validate_record_key(rkey)
    except AtprotoError as exc:
        raise InvalidRequestError(f"Invalid record key: {exc.message}") from exc
