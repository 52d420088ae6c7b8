"""The parts of one running PDS, built and wired once by :func:`open_components`.

Each part receives the few collaborators it uses, in dependency order: the store and
blob folder first, then the sequencer, the directory client and the handle resolver,
the account cache, the authenticator, the repository manager, the key reservations,
the account manager and the blob collector. No part holds this object; it exists for the app
(:func:`plaza.services.pds.app.create_app`), which hands it to the XRPC handlers as
``call.pds`` and closes it at shutdown.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeAlias

import httpx

from plaza.db import private_dirs
from plaza.services.pds.account import AccountCache
from plaza.services.pds.accounts import AccountManager
from plaza.services.pds.auth import Authenticator
from plaza.services.pds.blob_gc import BlobCollector
from plaza.services.pds.blobs import BlobStore, DiskBlobStore
from plaza.services.pds.handles import HandleResolver
from plaza.services.pds.identity import DirectoryClient
from plaza.services.pds.lexicons import LexiconCheck
from plaza.services.pds.mail import Outbox
from plaza.services.pds.metering import Meter
from plaza.services.pds.proxy import Forwarder
from plaza.services.pds.ratelimit import RateLimiter
from plaza.services.pds.repos import RepoManager
from plaza.services.pds.reservations import KeyReservations
from plaza.services.pds.sequencer import Sequencer
from plaza.services.pds.settings import PdsSettings, ServerSecrets, load_or_create_secrets
from plaza.services.pds.store import PdsStore
from plaza.services.pds.throttle import PasswordThrottle
from plaza.services.pds.xrpc import XrpcCall


@dataclass
class PdsComponents:
    """Settings, secrets, stores and the services built over them."""

    settings: PdsSettings
    secrets: ServerSecrets
    store: PdsStore
    blobs: BlobStore
    sequencer: Sequencer
    meter: Meter
    limiter: RateLimiter
    passwords: PasswordThrottle
    http: httpx.AsyncClient
    identity: DirectoryClient
    handles: HandleResolver
    proxy: Forwarder
    outbox: Outbox
    lexicons: LexiconCheck
    auth: Authenticator
    repos: RepoManager
    reservations: KeyReservations
    accounts: AccountManager
    blob_gc: BlobCollector
    firehose_open: int = field(default=0)  # subscribeRepos connections being served

    async def aclose(self) -> None:
        self.meter.flush()
        await self.http.aclose()
        await self.proxy.aclose()
        await self.repos.aclose()
        self.store.close()


def open_components(
    settings: PdsSettings, *, clock: Callable[[], float] = time.time
) -> PdsComponents:
    """Open (or create) the store, blob folder and secrets of ``settings`` and build
    every part over them; session tokens are issued and checked, and record keys and
    revisions timed, by ``clock``."""
    private_dirs(settings.data_dir)
    secrets = load_or_create_secrets(settings.data_dir, settings.admin_password)
    store = PdsStore.open(settings.database_url)
    blobs = DiskBlobStore(settings.blob_dir)
    sequencer = Sequencer(store)
    limiter = RateLimiter(
        {
            "login_ip": settings.login_ip_limit,
            "create_account": settings.create_account_limit,
            "reserve_key": settings.reserve_key_limit,
        }
    )
    passwords = PasswordThrottle(settings.password_backoff, clock)
    http = httpx.AsyncClient(timeout=httpx.Timeout(15.0))
    identity = DirectoryClient(settings.directory_url, http)
    handles = HandleResolver(identity=identity, store=store, domains=settings.user_domains)
    outbox = Outbox(settings.mail_dir)
    lexicons = LexiconCheck()
    cache = AccountCache(store)
    auth = Authenticator(
        settings=settings,
        accounts=cache,
        store=store,
        passwords=passwords,
        identity=identity,
        secret=secrets.jwt_secret,
        admin_password=secrets.admin_password,
        clock=clock,
    )
    repos = RepoManager(
        store=store,
        sequencer=sequencer,
        lexicons=lexicons,
        identity=identity,
        accounts=cache,
        settings=settings,
        clock=clock,
    )
    reservations = KeyReservations(
        store=store, identity=identity, ttl_s=settings.reserved_key_ttl_s, clock=clock
    )
    accounts = AccountManager(
        store=store,
        cache=cache,
        sequencer=sequencer,
        repos=repos,
        auth=auth,
        identity=identity,
        handles=handles,
        outbox=outbox,
        blobs=blobs,
        settings=settings,
        rotation_key=secrets.rotation_key,
        reservations=reservations,
    )
    return PdsComponents(
        settings=settings,
        secrets=secrets,
        store=store,
        blobs=blobs,
        sequencer=sequencer,
        meter=Meter(store),
        limiter=limiter,
        passwords=passwords,
        http=http,
        identity=identity,
        handles=handles,
        proxy=Forwarder(settings),
        outbox=outbox,
        lexicons=lexicons,
        auth=auth,
        repos=repos,
        reservations=reservations,
        accounts=accounts,
        blob_gc=BlobCollector(store=store, blobs=blobs, repos=repos, grace_s=settings.blob_grace_s),
    )


Call: TypeAlias = XrpcCall[PdsComponents]
"""A call as the PDS's handlers see it."""

__all__ = ["Call", "PdsComponents", "open_components"]
