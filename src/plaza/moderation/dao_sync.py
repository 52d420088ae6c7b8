"""Following the DAO: its mandate and the moderation actions it executed.

:meth:`DaoSync.sync` reads ``GET /dao/mandate`` and ``GET /dao/actions`` from the DAO's
HTTP API and hands them to the labeler's :class:`~plaza.moderation.policy.Policy`.
With ``issue`` it also issues the labels the DAO newly authorized
(:meth:`~plaza.moderation.labeler.Labeler.authorized`): the DAO's executed actions are
a source like a firehose, and their cursor (the last ledger seq applied, stored as
:data:`DAO_SOURCE`) keeps a restarted labeler from issuing again what it applied before
(and an appeal reversed since). One process of a labeler issues them (the API server);
its workers on the bus only learn the mandate and what is authorized.
:meth:`DaoSync.follow` syncs every ``poll_s`` seconds until cancelled.
"""

from __future__ import annotations

import asyncio
from typing import Final

import httpx

from plaza.moderation.labeler import Labeler
from plaza.moderation.policy import MandateError

DAO_SOURCE: Final = "dao:actions"


class DaoSync:
    def __init__(
        self, labeler: Labeler, http: httpx.AsyncClient, dao_url: str | None, *, issue: bool
    ) -> None:
        self.labeler = labeler
        self.http = http
        self.dao_url = dao_url
        self.issue = issue
        self.synced = False
        self.error: str | None = None

    async def sync(self) -> int:
        """Read the DAO's mandate and executed actions (nothing without a DAO); how many
        labels that issued."""
        if self.dao_url is None:
            return 0
        base = self.dao_url.rstrip("/")
        policy, store = self.labeler.policy, self.labeler.store
        try:
            mandate = await self.http.get(f"{base}/dao/mandate")
            actions = await self.http.get(f"{base}/dao/actions")
            mandate.raise_for_status()
            actions.raise_for_status()
            policy.set_mandate(mandate.json())
            raws = actions.json()
        except (httpx.HTTPError, ValueError, MandateError) as exc:
            self.error = f"{type(exc).__name__}: {exc}"[:300]
            return 0
        self.synced, self.error = True, None
        raws = raws if isinstance(raws, list) else []
        after = store.cursor(DAO_SOURCE)
        authorized = policy.set_actions(raws, after=after)
        if not self.issue:
            return 0
        issued = 0
        for subject, val, authority in authorized:
            if self.labeler.authorized(subject, val, authority) is not None:
                issued += 1
        seqs = [r["seq"] for r in raws if isinstance(r, dict) and type(r.get("seq")) is int]
        if seqs and max(seqs) > after:
            store.set_cursor(DAO_SOURCE, max(seqs))
        return issued

    async def follow(self, poll_s: float) -> None:
        while True:
            await self.sync()
            await asyncio.sleep(poll_s)
