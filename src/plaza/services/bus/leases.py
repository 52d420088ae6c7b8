"""Who owns which partition: leases in a JetStream key-value bucket.

Theory of operation. The bucket ``<stream>_leases`` keeps each key for ``ttl_s``
seconds after its last write (the bucket's ``max_age``). Each consumer group (the app
view's indexers, the labeler's workers) has its own keys, under ``<group>.``, and shares
the partitions among its own workers only. A worker announces itself by writing
``<group>.w.<id>`` and owns partition ``p`` while it holds ``<group>.p.<p>``: it takes a free
partition with a create (which fails when another holds it) and keeps it by updating
the key at the revision it last wrote (which fails when the lease lapsed and someone
else took it). Both are refreshed every ``ttl_s / 3`` by :meth:`Leases.heartbeat` and
:meth:`Leases.renew`; a worker that dies stops writing, and ``ttl_s`` later its keys are
gone and its partitions free for the others. A clean stop deletes them at once.
"""

from __future__ import annotations

import contextlib

import nats.js.errors
from nats.js.api import KeyValueConfig, StorageType
from nats.js.kv import KeyValue

from plaza.services.bus.client import NATS_ERRORS, Bus
from plaza.services.bus.errors import BusError


class Leases:
    """One worker's view of the lease bucket (see the module docstring)."""

    def __init__(self, kv: KeyValue, worker_id: str, group: str) -> None:
        self.kv = kv
        self.worker_id = worker_id
        self.group = group
        self._revs: dict[int, int] = {}

    @classmethod
    async def open(cls, bus: Bus, worker_id: str, ttl_s: float, *, group: str) -> Leases:
        bucket = bus.layout.lease_bucket
        try:
            try:
                kv = await bus.js.key_value(bucket)
            except nats.js.errors.BucketNotFoundError:
                config = KeyValueConfig(
                    bucket=bucket, ttl=ttl_s, history=1, storage=StorageType.FILE
                )
                kv = await bus.js.create_key_value(config)
        except (*NATS_ERRORS,) as exc:
            raise BusError(f"cannot open lease bucket {bucket}: {exc!r}") from exc
        return cls(kv, worker_id, group)

    @property
    def held(self) -> set[int]:
        return set(self._revs)

    def _key(self, kind: str, name: object) -> str:
        return f"{self.group}.{kind}.{name}"

    async def heartbeat(self) -> int:
        """Announce this worker; return how many workers of its group are alive (this one
        included)."""
        await self.kv.put(self._key("w", self.worker_id), b"1")
        workers = self._key("w", "")
        return max(1, sum(k.startswith(workers) for k in await self._keys()))

    async def _keys(self) -> list[str]:
        # every key: NATS before 2.10 ignores a subject filter on this listing
        try:
            return list(await self.kv.keys())
        except nats.js.errors.NoKeysError:
            return []

    async def claim(self, partition: int) -> bool:
        """Take ``partition`` if nobody holds it."""
        try:
            rev = await self.kv.create(self._key("p", partition), self.worker_id.encode())
        except nats.js.errors.KeyWrongLastSequenceError:
            return False
        self._revs[partition] = rev
        return True

    async def renew(self, partition: int) -> bool:
        """Keep ``partition``; False (and no longer held) if the lease was lost."""
        rev = self._revs.get(partition)
        if rev is None:
            return False
        try:
            self._revs[partition] = await self.kv.update(
                self._key("p", partition), self.worker_id.encode(), last=rev
            )
        except (nats.js.errors.KeyWrongLastSequenceError, nats.js.errors.KeyNotFoundError):
            del self._revs[partition]
            # lapsed (this worker was too slow to renew it): keep it if nobody took it
            return await self.claim(partition)
        return True

    async def release(self, partition: int) -> None:
        rev = self._revs.pop(partition, None)
        if rev is not None:
            # it may have lapsed, and someone else hold it now
            with contextlib.suppress(nats.js.errors.KeyWrongLastSequenceError):
                await self.kv.delete(self._key("p", partition), last=rev)

    async def holders(self) -> dict[int, str]:
        """``partition -> worker id`` for every lease of the group held now."""
        out: dict[int, str] = {}
        partitions = self._key("p", "")
        for key in await self._keys():
            if not key.startswith(partitions):
                continue
            try:
                entry = await self.kv.get(key)
            except nats.js.errors.KeyNotFoundError:
                continue
            if entry.value:
                out[int(key.removeprefix(partitions))] = entry.value.decode()
        return out

    async def leave(self) -> None:
        """Give up every partition and the worker's announcement (a clean stop)."""
        for partition in list(self._revs):
            await self.release(partition)
        with contextlib.suppress(nats.js.errors.KeyWrongLastSequenceError):
            await self.kv.delete(self._key("w", self.worker_id))
