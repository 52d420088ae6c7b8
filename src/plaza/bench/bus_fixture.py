"""A small network whose live posts go over the bus: for ``plaza bench appview --bus``
and the bus tests.

:func:`build` makes ``accounts`` accounts with real ``did:plc`` identities (one shared
key, as in :mod:`plaza.bench.appview_live`), ``posts`` posts spread over them, and the
last ``live`` posts as signed ``#commit`` frames with the relay sequence numbers
1, 2, 3, ... (:func:`~plaza.bench.appview_live.build_frames`). :meth:`BusNetwork.backfill`
loads the earlier posts into a fresh index (every account indexed at the backfilled
``rev``), so the live commits follow what the index holds and go through the
follower's runs. :func:`directory` serves the accounts' DID documents.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from plaza.atproto.crypto import PrivateKey
from plaza.atproto.plc import create_genesis
from plaza.bench.appview import Network, _free_port, _repo, live_authors, live_frames
from plaza.bench.appview_live import LiveAuthor, register
from plaza.services.appview.bulk import BulkLoader
from plaza.services.appview.indexer import Indexer
from plaza.services.appview.store import AppviewStore
from plaza.services.directory import DirectorySettings
from plaza.services.directory import create_app as create_directory
from plaza.services.runner import ServedApp, ServerThread


@dataclass
class BusNetwork:
    """The synthetic network and its live events ``(seq, did, frame)``."""

    key: PrivateKey
    net: Network
    backfilled: int
    live_indices: list[int]
    events: list[tuple[int, str, bytes]]
    authors: list[LiveAuthor]

    @property
    def dids(self) -> list[str]:
        return [self.net.dids[i] for i in self.live_indices]

    def backfill(self, db_url: str) -> int:
        """Index every account's records before the live posts into ``db_url``; return
        the posts held then."""
        store = AppviewStore.open(db_url)
        try:
            loader = BulkLoader(Indexer(store))
            for i in self.live_indices:
                loader.add_repo(_repo(self.net.dids[i], self.net.repo_records(i, self.backfilled)))
            loader.flush(recount=False)
            loader.recount()
            return int(store.db.scalar("SELECT COUNT(*) FROM posts"))
        finally:
            store.close()


def build(*, accounts: int, posts: int, live: int) -> BusNetwork:
    """The network (see the module docstring); ``live`` <= ``posts``."""
    key = PrivateKey.generate()
    viewer, _ = create_genesis(
        key=key,
        rotation_keys=[key.did_key()],
        signing_key=key.did_key(),
        handle="viewer.test",
        pds_endpoint="https://pds.example",
    )
    net = Network(viewer, accounts, posts, 1, 4)
    backfilled = posts - live
    live_indices, authors = live_authors(key, net, backfilled)
    blocks, frames = live_frames(key, net, live_indices, backfilled)
    events = [
        (n + 1, did, frame)
        for n, ((did, _, _), frame) in enumerate(zip(blocks, frames, strict=True))
    ]
    return BusNetwork(
        key, net, backfilled, live_indices, events, [authors[i] for i in live_indices]
    )


@contextlib.contextmanager
def directory(network: BusNetwork, data_dir: Path) -> Iterator[str]:
    """Serve a directory holding every live author's DID; yield its URL."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    base = DirectorySettings.for_data_dir(data_dir)
    n = len(network.live_indices) + 1
    settings = DirectorySettings(db_url=base.db_url, genesis_burst=n, genesis_per_s=n)
    with ServerThread([ServedApp("directory", create_directory(settings), port=port)]):
        asyncio.run(register(url, network.authors))
        yield url
