"""Backfill on a first start: every repository the source lists is marked and then
fetched from its own PDS, whether or not the firehose still carries its history."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from plaza.services.archive.backfill import backfill
from tests.services.archive.conftest import archive_settings, directory, latest, member, pds
from tests.services.archive.fetching import Fetchers


def test_backfill_marks_what_the_source_lists(tmp_path: Path) -> None:
    with directory(tmp_path) as dir_url, pds(tmp_path, dir_url) as (pds_url, _):
        accounts = [member(pds_url) for _ in range(3)]
        for a in accounts:
            a.client.send_post("hello")
        f = Fetchers(archive_settings(tmp_path, pds_url, dir_url))
        store = f.archive.store
        store.want_resync(accounts[0].did, None, now=f.now)
        assert f.repos_round() == 1  # one is archived already

        async def run() -> int:
            async with httpx.AsyncClient() as http:
                return await backfill(f.settings, store, http, clock=lambda: f.now)

        assert asyncio.run(run()) == 2
        assert sorted(d for d, _ in store.resyncs_due(f.now, 10)) == sorted(
            a.did for a in accounts[1:]
        )
        assert f.repos_round() == 2
        for a in accounts:
            head = store.head(a.did)
            assert head is not None and not head.resync
            assert str(head.commit_cid) == latest(pds_url, a.did)["cid"]  # type: ignore[index]


def test_an_unreachable_source_marks_nothing(tmp_path: Path) -> None:
    with directory(tmp_path) as dir_url:
        f = Fetchers(archive_settings(tmp_path, "ws://127.0.0.1:9", dir_url))

        async def run() -> int:
            async with httpx.AsyncClient() as http:
                return await backfill(f.settings, f.archive.store, http, clock=lambda: f.now)

        assert asyncio.run(run()) == 0
        assert f.archive.store.counts().resyncs_pending == 0
