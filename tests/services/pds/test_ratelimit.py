"""Rate limits: fixed windows that expire in amortized constant time; logins limited per
client address, and failed passwords backing off per address and account (however the
account is named) without locking its owner out."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from plaza.services.directory import DirectorySettings
from plaza.services.directory import create_app as create_directory
from plaza.services.pds import PdsSettings, create_app
from plaza.services.pds.errors import RateLimitedError
from plaza.services.pds.ratelimit import RateLimiter
from plaza.services.pds.throttle import Backoff
from plaza.services.runner import ServedApp, ServerThread


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_fixed_windows() -> None:
    clock = Clock()
    limiter = RateLimiter({"login": (3, 60)}, clock)
    for _ in range(3):
        limiter.check("login", "a")
    with pytest.raises(RateLimitedError):
        limiter.check("login", "a")
    limiter.check("login", "b")  # another key has its own window
    limiter.check("other", "a")  # an unlimited bucket
    clock.now = 59.9
    with pytest.raises(RateLimitedError):
        limiter.check("login", "a")
    clock.now = 60.0
    limiter.check("login", "a")  # a new window


def test_expiry_does_not_scan_every_key_on_every_check() -> None:
    """Past 100,000 live keys, each check once swept them all (quadratic). A complexity
    check with a wide margin: 2,000 checks among 100,500 live keys must cost about what
    they cost among 1,000, not a thousand times more."""
    clock = Clock()

    def cost(keys: int) -> float:
        limiter = RateLimiter({"login": (5, 300)}, clock)
        for i in range(keys):
            limiter.check("login", f"k{i}")
        start = time.process_time()
        for i in range(2_000):
            limiter.check("login", f"new{i}")
            if time.process_time() - start > 5:
                break  # quadratic: no need to wait for the end
        return time.process_time() - start

    small, large = cost(1_000), cost(100_500)
    assert large < max(50 * small, 0.5), (small, large)


def test_expired_windows_leave_and_memory_is_bounded() -> None:
    clock = Clock()
    limiter = RateLimiter({"login": (5, 10)}, clock, max_keys=100)
    for i in range(250):
        limiter.check("login", f"k{i}")
    assert len(limiter) == 100  # the oldest were forgotten early
    clock.now = 11
    limiter.check("login", "late")
    assert len(limiter) == 1  # every expired window has left


LIMIT_PER_ADDRESS = 10
FREE = 3  # failed password checks in a row per address and account before waiting
WAIT_S = 10.0
CEILING = 6  # failures on one account, from any addresses, before each backs off at once
CLOCK = Clock()


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root: Path = tmp_path_factory.mktemp("rl")
    directory = ServedApp("directory", create_directory(DirectorySettings.for_data_dir(root / "d")))
    with ServerThread([directory]) as (dir_url,):
        pds = create_app(
            PdsSettings(
                data_dir=root / "pds",
                public_url="http://127.0.0.1:1",
                directory_url=dir_url,
                login_ip_limit=(LIMIT_PER_ADDRESS, 300),
                password_backoff=Backoff(
                    free_failures=FREE, base_s=WAIT_S, max_s=8 * WAIT_S, account_ceiling=CEILING
                ),
            ),
            clock=CLOCK,
        )
        # The test stands in for a reverse proxy: X-Forwarded-For names each client.
        with ServerThread([ServedApp("pds", pds, trusted_proxies=("127.0.0.1",))]) as (served,):
            yield served


def _account(url: str) -> dict[str, str]:
    handle = f"r{secrets.token_hex(4)}.test"
    r = httpx.post(
        f"{url}/xrpc/com.atproto.server.createAccount",
        json={"handle": handle, "password": "pw-12345678", "email": f"{handle}@x.test"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return {**r.json(), "email": f"{handle}@x.test"}


def _login(url: str, identifier: str, password: str, address: str) -> int:
    r = httpx.post(
        f"{url}/xrpc/com.atproto.server.createSession",
        json={"identifier": identifier, "password": password},
        headers={"x-forwarded-for": address},
        timeout=30,
    )
    return r.status_code


def test_failures_back_off_per_address_under_each_of_the_accounts_names(url: str) -> None:
    acct = _account(url)
    names = [acct["handle"], acct["did"], acct["email"].upper()]
    attacker = "198.51.100.1"
    assert [_login(url, n, "wrong password", attacker) for n in names] == [401] * FREE
    assert _login(url, acct["handle"], "pw-12345678", attacker) == 429  # waits, even if right
    assert _login(url, acct["did"], "pw-12345678", "198.51.100.2") == 200  # the owner elsewhere
    CLOCK.now += WAIT_S
    assert _login(url, acct["did"], "wrong again", attacker) == 401
    CLOCK.now += WAIT_S  # the next wait is twice as long
    assert _login(url, acct["did"], "pw-12345678", attacker) == 429
    CLOCK.now += WAIT_S
    assert _login(url, acct["did"], "pw-12345678", attacker) == 200
    assert _login(url, acct["did"], "wrong", attacker) == 401  # a success starts afresh


def test_the_owner_signs_in_while_one_address_hammers_the_account(url: str) -> None:
    acct = _account(url)
    codes = [_login(url, acct["handle"], f"guess {n}", "198.51.100.10") for n in range(5)]
    assert codes == [401] * FREE + [429] * 2
    assert _login(url, acct["handle"], "pw-12345678", "198.51.100.11") == 200


def test_many_addresses_past_the_ceiling_back_off_at_once_but_lock_no_one_out(url: str) -> None:
    acct = _account(url)
    addresses = [f"192.0.2.{i}" for i in range(CEILING + 2)]
    codes = [_login(url, acct["handle"], "guess", a) for a in addresses]
    assert codes == [401] * len(addresses)
    # Past the ceiling a single wrong guess makes an address wait ...
    assert _login(url, acct["handle"], "pw-12345678", addresses[-1]) == 429
    assert _login(url, acct["handle"], "pw-12345678", addresses[0]) == 200  # ... not before.
    # The owner from a fresh address: straight in; after a typo, a short wait.
    assert _login(url, acct["handle"], "pw-12345678", "192.0.2.100") == 200
    assert _login(url, acct["handle"], "typo", "192.0.2.101") == 401
    assert _login(url, acct["handle"], "pw-12345678", "192.0.2.101") == 429
    CLOCK.now += WAIT_S
    assert _login(url, acct["handle"], "pw-12345678", "192.0.2.101") == 200


def test_logins_are_limited_per_client_address(url: str) -> None:
    accounts = [_account(url) for _ in range(LIMIT_PER_ADDRESS + 1)]
    codes = [_login(url, a["handle"], "wrong password", "203.0.113.7") for a in accounts]
    assert codes == [401] * LIMIT_PER_ADDRESS + [429]
    last = accounts[-1]
    assert _login(url, last["handle"], "pw-12345678", "203.0.113.8") == 200


def test_delete_account_backs_off_like_login(url: str) -> None:
    acct = _account(url)
    codes = [
        httpx.post(
            f"{url}/xrpc/com.atproto.server.deleteAccount",
            json={"did": acct["did"], "password": "wrong password", "token": "AAAAAA-AAAAAA"},
            headers={"x-forwarded-for": "192.0.2.44"},
            timeout=30,
        ).status_code
        for _ in range(FREE + 1)
    ]
    assert codes == [401] * FREE + [429]
    assert _login(url, acct["did"], "pw-12345678", "192.0.2.45") == 200
