"""A live network for the entryway's tests: a directory, two PDSs (the first one can be
stopped), an archive following the first PDS's firehose, a DAO and its market on a
SQLite ledger (acme hosts on the first PDS, beta on the second: tests/agents/test_live's
``_market``), and the entryway in front, each served by uvicorn on a loopback port.
Clients are the atproto SDK and httpx; nothing is mocked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from plaza.agents.hosting import Hosting
from plaza.agents.runner import LiveAgent
from plaza.dao.service import Dao
from plaza.market import Market
from plaza.network.entryway import EntrywaySettings, create_app
from plaza.services.directory import DirectorySettings
from plaza.services.directory import create_app as create_directory
from plaza.services.pds import PdsSettings
from plaza.services.pds import create_app as create_pds
from plaza.services.runner import ServedApp, ServerThread
from tests.agents.test_live import AGENT, GENESIS, Net, _market
from tests.services.archive.conftest import archive, archive_settings, free_port, serve


@dataclass
class Network:
    directory: str
    pds: list[str]
    archive: str
    first: ServerThread  # the first PDS's server: stop() kills it
    dao: Dao
    market: Market
    hosting: Hosting
    root: Path

    def agent(self) -> LiveAgent:
        return LiveAgent(
            market=self.market, signer=AGENT, hosting=self.hosting, migration_key=AGENT.key
        )


@pytest.fixture
def network(tmp_path: Path) -> Iterator[Network]:
    dport, p1, p2 = free_port(), free_port(), free_port()
    directory_url = f"http://127.0.0.1:{dport}"

    def pds(i: int, port: int) -> ServedApp:
        settings = PdsSettings(
            data_dir=tmp_path / f"pds{i + 1}",
            public_url=f"http://127.0.0.1:{port}",
            directory_url=directory_url,
        )
        return ServedApp(f"pds{i + 1}", create_pds(settings), port=port)

    stay = ServerThread(
        [
            ServedApp(
                "directory",
                create_directory(DirectorySettings.for_data_dir(tmp_path / "d")),
                port=dport,
            ),
            pds(1, p2),
        ]
    )
    first = ServerThread([pds(0, p1)])
    with (
        stay as (directory, second),
        first as (old,),
        archive(archive_settings(tmp_path, old, directory)) as (archive_url, _),
    ):
        dao, m = _market(tmp_path, Net(directory, [old, second], []))
        yield Network(
            directory, [old, second], archive_url, first, dao, m, Hosting(directory), tmp_path
        )


class Clock:
    """The entryway's clock (ms): after the market's genesis, moved by the test."""

    def __init__(self) -> None:
        self.now = GENESIS + 1_000

    def __call__(self) -> int:
        return self.now


@contextmanager
def entryway(
    net: Network, *, db_url: str | None = None, name: str = "entryway", **extra: Any
) -> Iterator[tuple[str, Clock]]:
    """The entryway in front of ``net``, placing through the DAO's agent; yields its URL
    and its clock."""
    port = free_port()
    settings = EntrywaySettings(
        data_dir=net.root / name,
        public_url=f"http://127.0.0.1:{port}",
        directory_url=net.directory,
        db_url=db_url,
        **extra,
    )
    clock = Clock()
    with serve(name, create_app(settings, net.agent(), clock_ms=clock), port) as (url, _):
        yield url, clock


def agent_actions(m: Market, kind: str) -> list[dict[str, Any]]:
    return [
        ev.payload
        for ev in m.ledger.read()
        if ev.type == "agent.action" and ev.payload["action"]["kind"] == kind
    ]


def host_of(net: Network, did: str) -> str:
    endpoint: str = net.hosting.did_data(did)["services"]["atproto_pds"]["endpoint"]
    return endpoint


Check = Callable[[], Any]
