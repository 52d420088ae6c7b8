"""The parts of a running app view, as its handlers and its lifespan use them."""

from __future__ import annotations

import httpx

from plaza.services.appview.auth import ServiceAuth
from plaza.services.appview.feeds import FeedGenerators, load_service_key
from plaza.services.appview.follower import Follower
from plaza.services.appview.indexer import Indexer
from plaza.services.appview.label_stream import LabelStream
from plaza.services.appview.labels import Labels
from plaza.services.appview.reader import Reader
from plaza.services.appview.remote import Remote
from plaza.services.appview.settings import AppviewSettings
from plaza.services.appview.store import AppviewStore
from plaza.services.appview.views import Views
from plaza.services.identities import Identities

HTTP_TIMEOUT_S = 30.0


class Appview:
    """The parts of a running app view that handlers use."""

    def __init__(self, settings: AppviewSettings, store: AppviewStore) -> None:
        self.settings = settings
        self.store = store
        self.reader = Reader(store)
        self.indexer = Indexer(store)
        self.http = httpx.AsyncClient(timeout=HTTP_TIMEOUT_S)
        self.identities = Identities(settings.directory_url, self.http)
        self.auth = ServiceAuth(settings.did, self.identities)
        self.remote = Remote(
            settings.directory_url,
            allow_private=settings.remote_allow_private,
            timeout_s=settings.remote_timeout_s,
            max_bytes=settings.remote_max_bytes,
        )
        self.key = load_service_key(settings.data_dir)
        self.feeds = FeedGenerators(store, self.remote, settings.did, self.key)
        self.labels = Labels(store, self.remote, settings.labelers)
        self.label_streams = [LabelStream(self.labels, did) for did in settings.labelers]
        self.followers = [
            Follower(url, self.indexer, self.identities, self.http) for url in settings.relay_urls
        ]

    def views(self, viewer: str | None) -> Views:
        """Views for ``viewer`` (a DID; None or an account never indexed: anonymous)."""
        ident = None if viewer is None else self.store.find_actor(viewer)
        views = Views(self.reader, ident)
        views.labels = self.labels
        return views

    async def aclose(self) -> None:
        await self.http.aclose()
        await self.remote.aclose()
        self.store.close()
