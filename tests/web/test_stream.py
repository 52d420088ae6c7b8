"""Streamed pages and the JavaScript each page ships, against the live network of
:mod:`tests.web.world`."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from plaza.services.runner import ServedApp, ServerThread
from plaza.web import WebSettings, create_app
from tests.web.test_app import _signed_in
from tests.web.world import DEADLINE_S, World

JS_BUDGET = 50_000  # bytes, uncompressed, per page


@pytest.fixture
def silent_dao() -> Iterator[socket.socket]:
    """A DAO address that accepts connections and answers nothing until the test acts."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.settimeout(DEADLINE_S)
    yield sock
    sock.close()


def _read_until(chunks: Iterator[bytes], marker: str) -> str:
    seen = ""
    for chunk in chunks:
        seen += chunk.decode()
        if marker in seen:
            return seen
    raise AssertionError(f"the page ended without {marker!r}: {seen[-500:]}")


def test_the_head_goes_out_before_the_data_and_a_late_failure_ends_the_page_whole(
    net: World, silent_dao: socket.socket, tmp_path: Path
) -> None:
    dao = f"http://127.0.0.1:{silent_dao.getsockname()[1]}"
    settings = WebSettings(entryway=net.pds, dao=dao, data_dir=tmp_path / "web", cache_ttl_s=0)
    with (
        ServerThread([ServedApp("web", create_app(settings))]) as (web,),
        httpx.Client(base_url=web, timeout=DEADLINE_S) as c,
        c.stream("GET", "/governance", headers={"accept-encoding": "identity"}) as res,
    ):
        assert res.status_code == 200
        assert "plaza_session" in res.headers["set-cookie"]
        chunks = res.iter_raw()
        head = _read_until(chunks, "<main>")
        # The DAO has not answered, yet the browser has the stylesheet, the script and
        # the navigation, and the page is not finished.
        assert '<link rel="stylesheet" href="/static/plaza.css">' in head
        assert '<script type="module" src="/static/sign.js"></script>' in head
        assert "<title>Governance · Plaza</title>" in head and "</html>" not in head
        upstream, _ = silent_dao.accept()  # the web client's read is waiting here
        upstream.close()  # ... and fails: the connection drops without an answer
        page = head + "".join(chunk.decode() for chunk in chunks)
    assert page.rstrip().endswith("</html>") and page.count("<h1>") == 1
    assert "<h1>Something went wrong</h1>" in page
    alert = r'<p class="error" role="alert">cannot reach http://127\.0\.0\.1:\d+/dao'
    assert re.search(alert, page)


def test_a_streamed_page_renders_whole(net: World) -> None:
    c, acct = _signed_in(net, "stream")
    net.synced()
    with c.stream("GET", f"/profile/{acct['did']}") as res:
        assert res.status_code == 200 and "transfer-encoding" in res.headers
        page = res.read().decode()
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    assert page.count("<h1>") == 1 and f"@{acct['handle']}" in page
    assert '<p class="error" role="alert">' not in page


def test_checks_made_from_the_address_alone_keep_their_status(net: World) -> None:
    r = httpx.get(f"{net.web}/", params={"feed": "nope"})
    assert r.status_code == 404
    r = httpx.get(f"{net.web}/notifications")  # not signed in: to the sign-in page first
    assert (r.status_code, r.headers["location"]) == (303, "/signin")


def _scripts(html: str) -> list[str]:
    return re.findall(r'<script[^>]*\ssrc="([^"]+)"', html)


def test_no_page_ships_more_than_50_kb_of_javascript(net: World) -> None:
    c, acct = _signed_in(net, "budget")
    post = net.post(acct, "a post to open")
    did, _, rkey = post["uri"].removeprefix("at://").split("/")
    net.synced()
    anonymous = httpx.Client(base_url=net.web, timeout=DEADLINE_S)
    pages = [
        "/signin", "/signup", "/", "/?feed=hot", f"/profile/{acct['did']}",
        f"/post/{did}/{rkey}", "/notifications", "/search", "/search?q=post",
        "/settings/profile", "/governance", f"/governance/proposals/{net.proposal}",
        "/governance/members", "/governance/actions", "/governance/treasury",
        "/governance/charter", "/governance/receipt", "/network",
    ]  # fmt: skip
    sizes: dict[str, int] = {}
    shipped: dict[str, int] = {}
    for path in pages:
        r = (anonymous if path.startswith("/sign") else c).get(path)
        assert r.status_code == 200, (path, r.status_code)
        scripts = _scripts(r.text)
        if "hx-post" in r.text:
            assert "/static/htmx.min.js" in scripts, path  # its updates need htmx
        if "data-sign" in r.text:
            assert "/static/sign.js" in scripts, path  # its forms are signed in the page
        for src in scripts:
            if src not in sizes:
                raw = c.get(src, headers={"accept-encoding": "identity"})
                assert raw.status_code == 200, src
                sizes[src] = len(raw.content)
        shipped[path] = sum(sizes[src] for src in scripts)
    over = {path: n for path, n in shipped.items() if n > JS_BUDGET}
    assert not over, f"pages over {JS_BUDGET} bytes of JavaScript: {over}"
    assert shipped[f"/post/{did}/{rkey}"] > 0 and shipped["/governance"] > 0  # counted
