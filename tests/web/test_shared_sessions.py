"""Sessions sealed in the cookie: any web process sharing the data dir reads them, a
cookie that does not open signs the visitor out quietly. Against the live network of
:mod:`tests.web.world`, and real ``plaza serve web --workers 2`` processes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from plaza.services.runner import ServedApp, ServerThread
from plaza.web import WebSettings, create_app
from plaza.web.sessions import COOKIE, MAX_AGE_S, Sessions, load_key
from plaza.web.tokens import expires_at
from tests.web.world import DEADLINE_S, World


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def _sign_in(web: str, acct: dict[str, str]) -> httpx.Client:
    c = httpx.Client(base_url=web, timeout=DEADLINE_S)
    r = c.post("/signin", data={"csrf": _csrf(c.get("/signin").text), "handle": acct["handle"],
                                "password": acct["password"]})  # fmt: skip
    assert r.status_code == 303, r.text
    return c


def _as(web: str, cookie: str) -> httpx.Client:
    return httpx.Client(base_url=web, timeout=DEADLINE_S, cookies={COOKIE: cookie})


def test_a_session_from_one_app_works_in_another_sharing_the_data_dir(
    net: World, tmp_path: Path
) -> None:
    settings = WebSettings(entryway=net.pds, appview=net.appview, data_dir=tmp_path / "web")
    apps = [ServedApp("a", create_app(settings)), ServedApp("b", create_app(settings))]
    with ServerThread(apps) as (a, b):
        acct = net.account("shared")
        at_a = _sign_in(a, acct)
        cookie = at_a.cookies[COOKIE]
        at_b = _as(b, cookie)
        assert f"@{acct['handle']}" in at_b.get("/").text
        token = _csrf(at_a.get("/").text)  # a form rendered by one process ...
        r = at_b.post("/compose", data={"csrf": token, "text": "posted through b"})
        assert r.status_code == 303  # ... is accepted by the other
        assert [p["value"]["text"] for p in net.records(acct["did"], "app.bsky.feed.post")] == [
            "posted through b"
        ]


def _signed_out(r: httpx.Response) -> None:
    assert r.status_code == 200 and 'href="/signin"' in r.text and "Sign out" not in r.text
    assert '<p class="error" role="alert">' not in r.text
    assert f"{COOKIE}=" in r.headers["set-cookie"]  # a fresh anonymous session


def test_a_tampered_foreign_or_expired_cookie_signs_the_visitor_out(
    net: World, tmp_path: Path
) -> None:
    data = tmp_path / "web"
    settings = WebSettings(entryway=net.pds, appview=net.appview, data_dir=data)
    other = WebSettings(entryway=net.pds, appview=net.appview, data_dir=tmp_path / "other")
    apps = [ServedApp("web", create_app(settings)), ServedApp("other", create_app(other))]
    with ServerThread(apps) as (web, foreign):
        acct = net.account("tamper")
        cookie = _sign_in(web, acct).cookies[COOKIE]
        assert "Sign out" in _as(web, cookie).get("/").text
        middle = len(cookie) // 2
        tampered = cookie[:middle] + ("A" if cookie[middle] != "A" else "B") + cookie[middle + 1 :]
        _signed_out(_as(web, tampered).get("/"))
        _signed_out(_as(foreign, cookie).get("/"))  # sealed under another key
        sealer = Sessions(load_key(data))
        session = sealer.open(cookie)
        assert session is not None and session.account is not None
        session.issued = time.time() - MAX_AGE_S - 1
        _signed_out(_as(web, sealer.seal(session)).get("/"))
        r = _as(web, tampered).post("/compose", data={"csrf": session.csrf, "text": "no"})
        assert r.status_code == 403  # the stale cookie's CSRF token is no good either
    assert net.records(acct["did"], "app.bsky.feed.post") == []


def test_a_streamed_page_renews_a_running_out_access_token_first(
    net: World, tmp_path: Path
) -> None:
    data = tmp_path / "web"
    settings = WebSettings(entryway=net.pds, appview=net.appview, data_dir=data)
    with ServerThread([ServedApp("web", create_app(settings))]) as (web,):
        acct = net.account("renew")
        cookie = _sign_in(web, acct).cookies[COOKIE]
        sealer = Sessions(load_key(data))
        session = sealer.open(cookie)
        assert session is not None and session.account is not None
        assert expires_at(session.account.access) is not None
        session.account.access = "no.claims.here"  # cannot tell when it runs out: renew
        r = _as(web, sealer.seal(session)).get("/")
        assert r.status_code == 200 and f"@{acct['handle']}" in r.text
        assert '<p class="error" role="alert">' not in r.text
        renewed = sealer.open(r.cookies[COOKIE])  # the new tokens went out with the head
        assert renewed is not None and renewed.account is not None
        assert expires_at(renewed.account.access) is not None


def _listeners(port: int) -> int:
    """How many sockets listen on ``port`` (IPv4, this host), from /proc/net/tcp."""
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    want = f":{port:04X}"
    return sum(1 for line in lines if line.split()[1].endswith(want) and line.split()[3] == "0A")


def test_plaza_serve_web_workers_share_sessions(net: World, tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "plaza.cli", "serve", "web", "--pds", net.pds,
           "--appview", net.appview, "--port", "0", "--workers", "2",
           "--data-dir", str(tmp_path / "web")]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    pipe = subprocess.PIPE
    proc = subprocess.Popen(cmd, stdout=pipe, stderr=subprocess.STDOUT, env=env, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        found = re.search(r"listening on (http://127\.0\.0\.1:(\d+))", line)
        assert found, line
        web, port = found.group(1), int(found.group(2))
        deadline = time.monotonic() + 2 * DEADLINE_S
        while _listeners(port) < 2:  # the second process binds once it has started
            assert proc.poll() is None and time.monotonic() < deadline, "no second worker"
            time.sleep(0.05)  # another process starting: poll with a deadline
        acct = net.account("workers")
        cookie = _sign_in(web, acct).cookies[COOKIE]
        for _ in range(12):  # each on a new connection, which the kernel gives either process
            with _as(web, cookie) as c:
                assert f"@{acct['handle']}" in c.get("/settings/profile").text
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=DEADLINE_S)
    assert proc.returncode == 0, out
    assert _listeners(port) == 0  # every process stopped
