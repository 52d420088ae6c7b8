"""The admin's HTTP Basic password cannot be guessed at leisure: failed attempts back
off per client address, and while an address backs off even the right password waits
there; the admin at another address is not locked out."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from plaza.services.pds import PdsSettings, create_app
from plaza.services.pds.throttle import Backoff
from plaza.services.runner import ServedApp, ServerThread

PASSWORD = "the-admin-password"
WAIT_S = 60.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


CLOCK = Clock()


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root: Path = tmp_path_factory.mktemp("auth")
    settings = PdsSettings(
        data_dir=root,
        public_url="http://127.0.0.1:1",
        directory_url="-",
        admin_password=PASSWORD,
        password_backoff=Backoff(free_failures=5, base_s=WAIT_S),
    )
    # The test stands in for a reverse proxy: X-Forwarded-For names each client.
    app = create_app(settings, clock=CLOCK)
    with ServerThread([ServedApp("pds", app, trusted_proxies=("127.0.0.1",))]) as (served,):
        yield served


def _usage(url: str, password: str, address: str) -> int:
    basic = base64.b64encode(f"admin:{password}".encode()).decode()
    return httpx.get(
        f"{url}/xrpc/social.plaza.provider.getUsage",
        headers={"authorization": f"Basic {basic}", "x-forwarded-for": address},
    ).status_code


def test_failed_admin_logins_back_off_per_address(url: str) -> None:
    assert _usage(url, PASSWORD, "198.51.100.1") == 200
    codes = [_usage(url, f"guess {n}", "198.51.100.2") for n in range(6)]
    assert codes == [401] * 5 + [429]
    assert _usage(url, PASSWORD, "198.51.100.2") == 429  # no more guesses from there
    assert _usage(url, PASSWORD, "198.51.100.3") == 200  # others are not locked out
    for _ in range(10):  # successes are not failures
        assert _usage(url, PASSWORD, "198.51.100.1") == 200
    CLOCK.now += WAIT_S
    assert _usage(url, "guess again", "198.51.100.2") == 401
    CLOCK.now += WAIT_S  # the next wait is twice as long
    assert _usage(url, PASSWORD, "198.51.100.2") == 429
    CLOCK.now += WAIT_S
    assert _usage(url, PASSWORD, "198.51.100.2") == 200


def test_per_account_metrics_are_for_the_admin(url: str) -> None:
    public = httpx.get(f"{url}/metrics")
    assert public.status_code == 200
    assert "plaza_pds_xrpc_requests" in public.text
    assert "plaza_pds_account_" not in public.text
    basic = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    full = httpx.get(
        f"{url}/metrics",
        headers={"authorization": f"Basic {basic}", "x-forwarded-for": "198.51.100.9"},
    )
    assert full.status_code == 200 and "# HELP plaza_pds_account_records" in full.text
    wrong = base64.b64encode(b"admin:nope").decode()
    denied = httpx.get(
        f"{url}/metrics",
        headers={"authorization": f"Basic {wrong}", "x-forwarded-for": "198.51.100.9"},
    )
    assert denied.status_code == 401 and "plaza_pds_account_" not in denied.text
