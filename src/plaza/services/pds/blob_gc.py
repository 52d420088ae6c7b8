"""Collecting blobs nobody references, so uploads cannot fill the disk.

Theory of operation. A blob is uploaded before the record that uses it is written, and
a record that used it can be deleted or changed, so an account can hold blobs no record
references. A sweep (:meth:`BlobCollector.sweep`, run by the app's housekeeping) works
in two steps a grace period apart:

1. *mark*: every held blob that no current record references gets a mark with the time
   it was first seen so; marks of blobs referenced again are dropped;
2. *collect*: a blob marked at least ``blob_grace_s`` ago and last uploaded at least as
   long ago is forgotten for its account — under that repository's lock, after checking
   once more that no record references it. Its bytes are deleted when no account holds
   them any more.

The lock is what makes "never a referenced blob" hold: a write checks its blobs and
commits its references while holding the repository's lock (on PostgreSQL the commit
runs while other tasks do), so the final check never races a commit in flight. A new
upload of the blob restarts its grace period
(:meth:`~plaza.services.pds.store.PdsStore.add_blob`). A migrating account imports its
repository first and uploads its blobs after, so those blobs are referenced as soon as
they arrive. Temporary upload files left by a crash are removed after the same grace
period.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from plaza.atproto.cid import CID
from plaza.services.pds.sequencer import iso_time

if TYPE_CHECKING:
    from plaza.services.pds.blobs import BlobStore
    from plaza.services.pds.repos import RepoManager
    from plaza.services.pds.store import PdsStore

log = logging.getLogger("plaza.pds")

BATCH = 500


def drop_unheld_bytes(store: PdsStore, blobs: BlobStore, cid: bytes) -> None:
    """Delete the bytes of blob ``cid`` when no account holds it any more."""
    if store.blob_owner_count(cid) == 0:
        blobs.delete(CID(cid))


class BlobCollector:
    """Marks and collects unreferenced blobs (see the module docstring)."""

    def __init__(
        self, *, store: PdsStore, blobs: BlobStore, repos: RepoManager, grace_s: int
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.repos = repos
        self.grace_s = grace_s
        self.sweeps = 0  # passes completed, for whoever waits for the next one

    async def sweep(self, now: float) -> int:
        """One mark-and-collect pass at time ``now`` (partial uploads are aged by the
        wall clock); returns how many blobs accounts stopped holding."""
        store = self.store
        grace = self.grace_s
        marked_before = int(now) - grace
        uploaded_before = iso_time(now - grace)
        store.mark_unreferenced_blobs(int(now))
        collected = 0
        while True:
            batch = store.collectable_blobs(marked_before, uploaded_before, BATCH)
            for did, cid in batch:
                async with self.repos.lock(did):
                    if not store.collect_blob(did, cid, marked_before, uploaded_before):
                        continue
                    drop_unheld_bytes(store, self.blobs, cid)
                collected += 1
                log.debug("collected unreferenced blob %s of %s", CID(cid), did)
            if len(batch) < BATCH:
                break
        # Partial uploads are aged by their files' times, which the wall clock sets.
        self.blobs.prune_temporary(time.time() - grace)
        self.sweeps += 1
        return collected
