"""The parts of one running PDS, wired together once in :func:`PdsContext.open`."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from plaza.db import private_dirs
from plaza.services.pds.accounts import AccountManager
from plaza.services.pds.auth import Authenticator
from plaza.services.pds.blob_gc import BlobCollector
from plaza.services.pds.blobs import BlobStore, DiskBlobStore
from plaza.services.pds.identity import DirectoryClient
from plaza.services.pds.lexicons import LexiconCheck
from plaza.services.pds.mail import Outbox
from plaza.services.pds.metering import Meter
from plaza.services.pds.proxy import Forwarder
from plaza.services.pds.ratelimit import RateLimiter
from plaza.services.pds.repos import RepoManager
from plaza.services.pds.sequencer import Sequencer
from plaza.services.pds.settings import PdsSettings, ServerSecrets, load_or_create_secrets
from plaza.services.pds.store import PdsStore
from plaza.services.pds.throttle import PasswordThrottle
from plaza.services.pds.xrpc import Method


class PdsContext:
    """Settings, secrets, store, blob store, sequencer, directory client and services."""

    settings: PdsSettings
    secrets: ServerSecrets
    store: PdsStore
    blobs: BlobStore
    blob_gc: BlobCollector
    sequencer: Sequencer
    meter: Meter
    limiter: RateLimiter
    passwords: PasswordThrottle
    auth: Authenticator
    accounts: AccountManager
    repos: RepoManager
    identity: DirectoryClient
    outbox: Outbox
    http: httpx.AsyncClient
    proxy: Forwarder
    lexicons: LexiconCheck
    firehose_open: int  # subscribeRepos connections being served (see firehose.py)

    @classmethod
    def open(cls, settings: PdsSettings, clock: Callable[[], float] = time.time) -> PdsContext:
        ctx = cls()
        ctx.settings = settings
        ctx.firehose_open = 0
        private_dirs(settings.data_dir)
        ctx.secrets = load_or_create_secrets(settings.data_dir, settings.admin_password)
        ctx.store = PdsStore.open(settings.database_url)
        ctx.blobs = DiskBlobStore(settings.blob_dir)
        ctx.sequencer = Sequencer(ctx.store)
        ctx.meter = Meter(ctx.store)
        ctx.limiter = RateLimiter(
            {
                "login_ip": settings.login_ip_limit,
                "create_account": settings.create_account_limit,
            }
        )
        ctx.passwords = PasswordThrottle(settings.password_backoff, clock)
        ctx.http = httpx.AsyncClient(timeout=httpx.Timeout(15.0))
        ctx.identity = DirectoryClient(settings.directory_url, ctx.http)
        ctx.proxy = Forwarder(settings)
        ctx.outbox = Outbox(settings.mail_dir)
        ctx.lexicons = LexiconCheck()
        ctx.auth = Authenticator(ctx, ctx.secrets.jwt_secret, ctx.secrets.admin_password)
        ctx.accounts = AccountManager(ctx)
        ctx.repos = RepoManager(ctx)
        ctx.blob_gc = BlobCollector(ctx)
        return ctx

    def proxy_for(self, nsid: str, *, named: bool) -> Method | None:
        """The method that forwards ``nsid`` to an app view, if it is one to forward
        (``named``: the request names its target in ``atproto-proxy``)."""
        from plaza.services.pds.handlers.bsky import proxy_method

        return proxy_method(self, nsid, named=named)

    async def aclose(self) -> None:
        self.meter.flush()
        await self.http.aclose()
        await self.proxy.aclose()
        await self.repos.aclose()
        self.store.close()
