"""A bounded cache of archived blocks, for the archive's store."""

from __future__ import annotations

import collections


class BlockCache:
    """Blocks recently read, by ``(repo, cid)``, at most ``max_bytes`` (least recently
    used out first). The tree's top nodes are read by every commit of a repository.
    Blocks never change, but one can leave a repository and come back: the store
    forgets a block here whenever it deletes it, so the cache never says "archived"
    of a block that is not."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._size = 0
        self._blocks: collections.OrderedDict[tuple[int, bytes], bytes] = collections.OrderedDict()

    def get(self, key: tuple[int, bytes]) -> bytes | None:
        data = self._blocks.get(key)
        if data is not None:
            self._blocks.move_to_end(key)
        return data

    def put(self, key: tuple[int, bytes], data: bytes) -> None:
        if key in self._blocks:
            return
        self._blocks[key] = data
        self._size += len(data)
        while self._size > self.max_bytes:
            _, old = self._blocks.popitem(last=False)
            self._size -= len(old)

    def forget(self, key: tuple[int, bytes]) -> None:
        data = self._blocks.pop(key, None)
        if data is not None:
            self._size -= len(data)
