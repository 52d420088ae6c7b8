"""New DIDs are limited per client address (a token bucket on the directory's clock);
X-Forwarded-For picks the address only from a trusted proxy."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime, timedelta

import httpx
import pytest

from plaza.services.directory import DirectorySettings, create_app
from plaza.services.runner import ServedApp, ServerThread
from tests.services.directory.helpers import T0, identity

BURST = 3
_names = itertools.count()


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def _genesis(url: str, address: str | None = None) -> httpx.Response:
    ident = identity(f"rl{next(_names)}.test")
    headers = {"x-forwarded-for": address} if address else {}
    return httpx.post(f"{url}/{ident.did}", json=ident.genesis.to_json(), headers=headers)


@pytest.fixture
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Clock]]:
    """The same directory twice: as the client's peer, and behind a proxy at 127.0.0.1."""
    clock = Clock()
    root = tmp_path_factory.mktemp("dir-rl")
    settings = DirectorySettings.for_data_dir(root)
    limited = DirectorySettings(settings.db_url, genesis_burst=BURST, genesis_per_s=0.5)
    apps = [
        ServedApp("direct", create_app(limited, clock=clock)),
        ServedApp("proxied", create_app(limited, clock=clock), trusted_proxies=("127.0.0.1",)),
    ]
    with ServerThread(apps) as (direct, proxied):
        yield direct, proxied, clock


def test_genesis_operations_are_limited_per_address(served: tuple[str, str, Clock]) -> None:
    url, _, clock = served
    assert [_genesis(url).status_code for _ in range(BURST)] == [200] * BURST
    refused = _genesis(url)
    assert refused.status_code == 429
    assert refused.json()["error"] == "RateLimitExceeded"
    assert "too many new DIDs" in refused.json()["message"]
    assert refused.headers["retry-after"] == "2"
    did = refused.request.url.path.lstrip("/")
    assert httpx.get(f"{url}/{did}").status_code == 404  # nothing registered
    clock.now += timedelta(seconds=2)
    assert _genesis(url).status_code == 200
    assert _genesis(url).status_code == 429


def test_forwarded_for_from_an_untrusted_peer_does_not_change_the_address(
    served: tuple[str, str, Clock],
) -> None:
    url, _, _ = served
    codes = [_genesis(url, f"198.51.100.{i}").status_code for i in range(BURST + 1)]
    assert codes == [200] * BURST + [429]


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_bucket(
    served: tuple[str, str, Clock],
) -> None:
    _, url, _ = served
    codes = [_genesis(url, f"198.51.100.{i}").status_code for i in range(BURST + 1)]
    assert codes == [200] * (BURST + 1)
    codes = [_genesis(url, "203.0.113.5").status_code for _ in range(BURST + 1)]
    assert codes == [200] * BURST + [429]
