"""Finding hosts: the market's registered hosting providers are followed, and
``requestCrawl`` is bounded (the number of hosts, private addresses when refused)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from plaza.services.directory import DirectorySettings
from plaza.services.directory import create_app as create_directory
from plaza.services.relay import RelaySettings, create_app
from plaza.services.runner import ServedApp, ServerThread
from tests.services.relay.conftest import Tap
from tests.services.relay.hostile import FakeAccount, FakeHost, commit_body


def _market(endpoints: list[str]) -> Starlette:
    """The one market route the relay reads: ``GET /market/providers``."""

    async def providers(request: Request) -> Response:
        if request.query_params.get("service") != "hosting":
            return JSONResponse([])
        return JSONResponse(
            [{"did": "did:web:x", "services": ["hosting"], "endpoint": e} for e in endpoints]
        )

    return Starlette(routes=[Route("/market/providers", providers)])


@dataclass
class Setup:
    relay: str
    directory: str
    hosts: list[FakeHost]


@pytest.fixture
def setup(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Setup]:
    options: dict[str, object] = getattr(request, "param", {})
    hosts = [FakeHost(), FakeHost()]
    market_endpoints: list[str] = []
    first = [
        ServedApp("directory", create_directory(DirectorySettings.for_data_dir(tmp_path / "d"))),
        *[ServedApp(f"h{i}", h.app()) for i, h in enumerate(hosts)],
        ServedApp("market", _market(market_endpoints)),
    ]
    with ServerThread(first) as urls:
        for host, url in zip(hosts, urls[1:3], strict=True):
            host.url = url
        market_endpoints.append(hosts[0].url)
        settings = RelaySettings(
            data_dir=tmp_path / "relay",
            directory_url=urls[0],
            market_url=urls[3] if options.get("market") else None,
            market_poll_s=0.05,
            max_hosts=int(str(options.get("max_hosts", 10))),
            allow_private_hosts=not options.get("no_private"),
        )
        with ServerThread([ServedApp("relay", create_app(settings))]) as (relay,):
            yield Setup(relay, urls[0], hosts)


@pytest.mark.parametrize("setup", [{"market": True}], indirect=True)
def test_the_markets_hosting_providers_are_followed(setup: Setup) -> None:
    host = setup.hosts[0]
    acct = FakeAccount(setup.directory, host.url).register()
    result = acct.next_commit()
    with Tap(setup.relay, 0) as tap:
        host.push("#commit", commit_body(result))
        tap.commit_of(acct.did, result.rev)
    hosts = httpx.get(f"{setup.relay}/xrpc/com.atproto.sync.listHosts").json()["hosts"]
    assert [h["hostname"] for h in hosts] == [host.url.removeprefix("http://")]


@pytest.mark.parametrize("setup", [{"max_hosts": 1}], indirect=True)
def test_request_crawl_stops_at_the_host_limit(setup: Setup) -> None:
    crawl = f"{setup.relay}/xrpc/com.atproto.sync.requestCrawl"
    assert httpx.post(crawl, json={"hostname": setup.hosts[0].url}).status_code == 200
    r = httpx.post(crawl, json={"hostname": setup.hosts[1].url})
    assert r.status_code == 429 and r.json()["error"] == "TooManyHosts"
    hosts = httpx.get(f"{setup.relay}/xrpc/com.atproto.sync.listHosts").json()["hosts"]
    assert len(hosts) == 1


@pytest.mark.parametrize("setup", [{"no_private": True}], indirect=True)
def test_private_hosts_can_be_refused(setup: Setup) -> None:
    r = httpx.post(
        f"{setup.relay}/xrpc/com.atproto.sync.requestCrawl",
        json={"hostname": setup.hosts[0].url},
    )
    assert r.status_code == 400 and "private" in r.json()["message"]
    assert httpx.get(f"{setup.relay}/xrpc/com.atproto.sync.listHosts").json()["hosts"] == []


def test_request_crawl_is_rate_limited_per_client(setup: Setup) -> None:
    crawl = f"{setup.relay}/xrpc/com.atproto.sync.requestCrawl"
    codes = [httpx.post(crawl, json={"hostname": "127.0.0.1:1"}).status_code for _ in range(25)]
    assert codes[:20] == [400] * 20 and 429 in codes[20:]
