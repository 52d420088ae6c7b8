"""The web client's speed as members see it: time to first byte under 50 concurrent
users, and the JavaScript a page ships.

The network runs as ``plaza up`` runs it, one OS process per service (``python -m
plaza.cli serve``): a directory, a PDS forwarding ``app.bsky.*`` to an app view that
follows its firehose, and the web client. ``users`` accounts each post ``posts`` times
and follow ``follows`` others; each signs in to the web client with its own cookie jar.
Once all are signed in, every user at once requests ``requests`` pages in turn: Home
(the Following feed: web client → PDS → app view) and another user's profile (profile
and author feed).

* ``ttfb_p95_ms`` (and ``_p50_``, per page ``home_``/``profile_``): from sending the
  request to receiving the response's status line and headers, over every request;
* ``js_bytes_gzip``: the bytes of every script the pages load, as sent to a browser
  that accepts gzip; ``js_bytes_raw`` uncompressed.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from plaza.errors import PlazaError

START_S = 60.0
INDEX_S = 120.0


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(root: Path, name: str, args: list[str]) -> subprocess.Popen[bytes]:
    log = (root / f"{name}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "plaza.cli", "serve", *args], stdout=log, stderr=subprocess.STDOUT
    )


def _wait(url: str, proc: subprocess.Popen[bytes], name: str) -> None:
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise PlazaError(f"{name} exited while starting (status {proc.returncode})")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)  # a process starting: poll its health with a deadline
    raise PlazaError(f"{name} did not answer {url} within {START_S:.0f} s")


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    if found is None:
        raise PlazaError("the sign-in page has no CSRF token")
    return found.group(1)


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


async def _signed_in(web: str, acct: dict[str, str]) -> httpx.AsyncClient:
    c = httpx.AsyncClient(base_url=web, timeout=60)
    page = await c.get("/signin")
    form = {"csrf": _csrf(page.text), "handle": acct["handle"], "password": acct["password"]}
    r = await c.post("/signin", data=form)
    if r.status_code != 303:
        raise PlazaError(f"sign-in failed for a benchmark user: {r.status_code}")
    return c


async def _user(
    c: httpx.AsyncClient, others: list[str], requests: int, out: dict[str, list[float]]
) -> None:
    for i in range(requests):
        kind = "home" if i % 2 == 0 else "profile"
        path = "/" if kind == "home" else f"/profile/{others[i % len(others)]}"
        t0 = time.perf_counter()
        async with c.stream("GET", path) as res:
            out[kind].append((time.perf_counter() - t0) * 1000)
            await res.aread()
            if res.status_code != 200:
                raise PlazaError(f"GET {path} answered {res.status_code}")


def _js_bytes(web: str) -> tuple[int, int]:
    html = httpx.get(f"{web}/signin").text
    raw = gz = 0
    for src in re.findall(r'<script[^>]*src="([^"]+)"', html):
        with httpx.stream("GET", web + src, headers={"accept-encoding": "gzip"}) as res:
            gz += sum(len(chunk) for chunk in res.iter_raw())
        raw += len(httpx.get(web + src, headers={"accept-encoding": "identity"}).content)
    return raw, gz


def _network(
    root: Path, users: int, posts: int, follows: int
) -> tuple[list[Any], str, list[dict[str, str]]]:
    d, p, a, w = _port(), _port(), _port(), _port()
    directory, pds, av, web = (f"http://127.0.0.1:{x}" for x in (d, p, a, w))
    procs: list[Any] = []
    specs = [
        ("directory", ["directory", "--port", str(d), "--data-dir", str(root / "d")],
         f"{directory}/_health"),
        ("pds", ["pds", "--port", str(p), "--data-dir", str(root / "pds"), "--directory", directory,
                 "--appview", av], f"{pds}/xrpc/_health"),
        ("appview", ["appview", "--port", str(a), "--data-dir", str(root / "av"), "--directory",
                     directory, "--relay", pds], f"{av}/_health"),
        ("web", ["web", "--port", str(w), "--pds", pds, "--appview", av,
                 "--signin-burst", str(users * 4)], f"{web}/_health"),
    ]  # fmt: skip
    for name, args, health in specs:
        procs.append(_start(root, name, args))
        _wait(health, procs[-1], name)
    accounts = []
    with httpx.Client(base_url=pds, timeout=60) as c:
        for i in range(users):
            handle, password = f"u{i}-{secrets.token_hex(2)}.test", secrets.token_hex(10)
            signup = {"handle": handle, "password": password, "email": f"{handle}@x.test"}
            r = c.post("/xrpc/com.atproto.server.createAccount", json=signup)
            r.raise_for_status()
            accounts.append({"handle": handle, "password": password, "did": r.json()["did"],
                             "token": r.json()["accessJwt"]})  # fmt: skip
        for i, acct in enumerate(accounts):
            auth = {"authorization": f"Bearer {acct['token']}"}
            writes = [
                ("app.bsky.feed.post", {"text": f"post {k} by user {i}"}) for k in range(posts)
            ]
            writes += [("app.bsky.graph.follow", {"subject": accounts[(i + k) % users]["did"]})
                       for k in range(1, follows + 1)]  # fmt: skip
            for collection, record in writes:
                body: dict[str, Any] = {
                    "repo": acct["did"],
                    "collection": collection,
                    "record": {
                        "$type": collection,
                        "createdAt": "2026-12-01T00:00:00.000Z",
                        **record,
                    },
                }
                c.post(
                    "/xrpc/com.atproto.repo.createRecord", json=body, headers=auth
                ).raise_for_status()
        last = accounts[-1]
        deadline = time.monotonic() + INDEX_S
        while True:  # the app view has indexed the last user's follows' posts
            r = c.get("/xrpc/app.bsky.feed.getTimeline",
                      headers={"authorization": f"Bearer {last['token']}"})  # fmt: skip
            if r.status_code == 200 and len(r.json().get("feed", [])) >= min(posts * follows, 30):
                break
            if time.monotonic() > deadline:
                raise PlazaError("the app view did not index the benchmark's records in time")
            time.sleep(0.1)  # another process indexes: poll with a deadline
    return procs, web, accounts


def run(
    *, users: int = 50, requests: int = 20, posts: int = 2, follows: int = 10
) -> dict[str, Any]:
    """Run the benchmark (see the module docstring); the figures as a dict."""
    follows = min(follows, users - 1)
    with tempfile.TemporaryDirectory(prefix="plaza-bench-web-") as tmp:
        procs, web, accounts = _network(Path(tmp), users, posts, follows)
        try:
            out: dict[str, list[float]] = {"home": [], "profile": []}
            dids = [a["did"] for a in accounts]

            elapsed = 0.0

            async def everyone() -> None:
                nonlocal elapsed
                clients = [await _signed_in(web, a) for a in accounts]
                t0 = time.perf_counter()
                await asyncio.gather(*(
                    _user(c, dids[:i] + dids[i + 1:], requests, out)
                    for i, c in enumerate(clients)
                ))  # fmt: skip
                elapsed = time.perf_counter() - t0
                for c in clients:
                    await c.aclose()

            asyncio.run(everyone())
            raw, gz = _js_bytes(web)
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    every = out["home"] + out["profile"]
    return {
        "users": users,
        "requests": len(every),
        "ttfb_p50_ms": _p(every, 0.5),
        "ttfb_p95_ms": _p(every, 0.95),
        "home_ttfb_p95_ms": _p(out["home"], 0.95),
        "profile_ttfb_p95_ms": _p(out["profile"], 0.95),
        "ttfb_mean_ms": round(statistics.fmean(every), 2),
        "pages_per_s": round(len(every) / elapsed, 1),
        "js_bytes_raw": raw,
        "js_bytes_gzip": gz,
    }
