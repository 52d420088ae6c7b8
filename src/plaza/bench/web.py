"""The web client's speed as members see it: time to first byte under 50 concurrent
users, and the JavaScript a page ships.

The network runs as ``plaza up`` runs it, one OS process per service (``python -m
plaza.cli ...``): a directory, a PDS forwarding ``app.bsky.*`` to an app view that
follows its firehose, the DAO's API over a founded DAO with an open proposal, the
market's API on the same ledger, and two web clients side by side: one as it ships
(``workers`` processes on one port, as ``plaza up`` runs it; public reads cached for
2 s) and the baseline (one process, ``--cache-ttl 0``). ``users``
accounts each post ``posts`` times and follow ``follows`` others; each signs in to
both web clients with its own cookie jars. Then, per web client in turn, every user
at once (spread over :data:`CLIENT_PROCESSES` processes, so that no one event loop
reading 50 users' pages delays the answers it times) requests ``requests`` pages,
drawn from a fixed mix (Home 40 %, a profile 20 %, a thread 20 %, Governance 10 %,
Network 10 %), pausing a random think time (exponential, mean ``think_ms``; 0: back to
back) between pages.

* ``ttfb_p95_ms`` (and ``_p50_``, per page ``home_``, ...): from sending the request
  to receiving the response's status line and headers, over every request (a read
  page streams: its headers leave with its head, before the services answer);
  ``page_p95_ms``: from sending the request to the page's last byte;
  ``baseline`` holds the same figures for the web client without the cache;
* ``failed``: pages answered with an error status, or streamed with an error in place
  of their content (not in the timings); ``retried``:
  requests sent again after the server closed an idle connection under them;
* ``load_avg``: the machine's 1-minute load average after each run (the machine may
  be shared: read every figure next to it);
* ``web_cpu_ms_per_page``: CPU time the web client's processes used per page served
  (Linux ``/proc``; it does not depend on the machine's load as the times do);
* ``js_bytes_raw_per_page``: the bytes of the scripts each page loads, uncompressed
  (htmx, or on the pages with DAO forms the ballot signer); ``js_bytes_raw_max`` the
  most any page loads, ``js_bytes_gzip_max`` the same as sent to a browser that
  accepts gzip.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import random
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from plaza.errors import PlazaError
from plaza.network.processes import web_workers

log = logging.getLogger("plaza.bench.web")

START_S = 120.0
INDEX_S = 120.0
MIX = (("home", 4), ("profile", 2), ("thread", 2), ("governance", 1), ("network", 1))
PAGES = tuple(kind for kind, _ in MIX)
CLIENT_PROCESSES = 4


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(root: Path, name: str, args: list[str]) -> subprocess.Popen[bytes]:
    log = (root / f"{name}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "plaza.cli", *args], stdout=log, stderr=subprocess.STDOUT
    )


def _run(root: Path, name: str, args: list[str]) -> None:
    proc = _cli(root, name, args)
    if proc.wait(START_S) != 0:
        log = (root / f"{name}.log").read_text(errors="replace")[-2000:]
        raise PlazaError(f"plaza {' '.join(args[:2])} failed: {log}")


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
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def _client(web: str) -> httpx.AsyncClient:
    # Idle connections are dropped before the server's 5 s keep-alive timeout can close
    # one under a request (a real browser retries that case; httpx does not).
    limits = httpx.Limits(keepalive_expiry=2.0)
    return httpx.AsyncClient(base_url=web, timeout=120, limits=limits)


async def _signed_in(web: str, acct: dict[str, str]) -> httpx.AsyncClient:
    c = _client(web)
    page = await c.get("/signin")
    form = {"csrf": _csrf(page.text), "handle": acct["handle"], "password": acct["password"]}
    r = await c.post("/signin", data=form)
    if r.status_code != 303:
        raise PlazaError(f"sign-in failed for a benchmark user: {r.status_code}")
    return c


def _path(kind: str, rng: random.Random, dids: list[str], posts: list[str]) -> str:
    if kind == "home":
        return "/"
    if kind == "profile":
        return f"/profile/{rng.choice(dids)}"
    if kind == "thread":
        did, _, rkey = rng.choice(posts).removeprefix("at://").split("/")
        return f"/post/{did}/{rkey}"
    return f"/{kind}"


async def _user(
    c: httpx.AsyncClient,
    rng: random.Random,
    plan: tuple[list[str], list[str]],
    *,
    requests: int,
    think_ms: float,
    out: dict[str, list[float]],
) -> None:
    dids, posts = plan
    kinds = [kind for kind, weight in MIX for _ in range(weight)]
    await asyncio.sleep(rng.uniform(0, think_ms / 1000))  # users arrive spread out
    for _ in range(requests):
        kind = rng.choice(kinds)
        path = _path(kind, rng, dids, posts)
        for attempt in (1, 2):
            t0 = time.perf_counter()
            try:
                async with c.stream("GET", path) as res:
                    out[kind].append((time.perf_counter() - t0) * 1000)
                    await res.aread()
                    out[f"{kind}_whole"].append((time.perf_counter() - t0) * 1000)
            except httpx.RemoteProtocolError:
                # The server closed an idle kept-alive connection as the request went out;
                # a browser sends a GET again on a new connection, and so does this.
                if attempt == 2:
                    raise
                out["retried"].append(0.0)
                continue
            failed = '<p class="error" role="alert">' in res.text  # failed after its head
            if res.status_code != 200 or failed:  # counted, not timed: no answer
                out[kind].pop()
                out[f"{kind}_whole"].pop()
                out["failed"].append(float(res.status_code))
                alert = re.search(r'<p class="error" role="alert">(.{0,200})', res.text)
                log.warning("%s %s failed: %d %s", kind, path, res.status_code,
                            alert.group(1) if alert else res.text[:200])  # fmt: skip
            break
        if think_ms:
            await asyncio.sleep(rng.expovariate(1000 / think_ms))


def _js_bytes(web: str, pages: dict[str, str]) -> dict[str, Any]:
    """The scripts each page loads, in bytes: per page uncompressed, and the most any
    page ships, uncompressed and as sent to a browser that accepts gzip."""
    sizes: dict[str, tuple[int, int]] = {}
    raw: dict[str, int] = {}
    gz: dict[str, int] = {}
    for name, path in pages.items():
        html = httpx.get(web + path, timeout=60).text
        scripts = sorted(set(re.findall(r'<script[^>]*\ssrc="([^"]+)"', html)))
        for src in scripts:
            if src not in sizes:
                with httpx.stream("GET", web + src, headers={"accept-encoding": "gzip"}) as res:
                    zipped = sum(len(chunk) for chunk in res.iter_raw())
                plain = httpx.get(web + src, headers={"accept-encoding": "identity"})
                sizes[src] = (len(plain.content), zipped)
        raw[name] = sum(sizes[src][0] for src in scripts)
        gz[name] = sum(sizes[src][1] for src in scripts)
    return {
        "js_bytes_raw_per_page": raw,
        "js_bytes_raw_max": max(raw.values()),
        "js_bytes_gzip_max": max(gz.values()),
    }


def _governance(root: Path) -> None:
    gov = ["--data-dir", str(root / "gov")]
    founders = [a for name in ("alice", "bob", "carol") for a in ("--founder", name)]
    _run(root, "dao-init", ["dao", "init", *founders, "--agent", "ops", *gov])
    choices = ["--choice", "eu-north", "--choice", "us-east"]
    propose = ["dao", "propose", "signal", "Which region next?", *choices, "--as", "alice"]
    _run(root, "dao-propose", [*propose, *gov])


def _network(
    root: Path, users: int, posts: int, follows: int, workers: int
) -> tuple[list[Any], tuple[str, str], list[dict[str, str]], list[str]]:
    d, p, a, dao, m, w, b = (_port() for _ in range(7))
    directory, pds, av, dao_url, market, web, base = (
        f"http://127.0.0.1:{x}" for x in (d, p, a, dao, m, w, b)
    )
    _governance(root)
    gov = ["--data-dir", str(root / "gov")]
    web_args = ["--pds", pds, "--appview", av, "--dao", dao_url, "--market", market,
                "--signin-burst", str(users * 4)]  # fmt: skip
    specs = [
        ("directory", ["serve", "directory", "--port", str(d), "--data-dir", str(root / "d")],
         f"{directory}/_health"),
        ("pds", ["serve", "pds", "--port", str(p), "--data-dir", str(root / "pds"),
                 "--directory", directory, "--appview", av], f"{pds}/xrpc/_health"),
        ("appview", ["serve", "appview", "--port", str(a), "--data-dir", str(root / "av"),
                     "--directory", directory, "--relay", pds], f"{av}/_health"),
        ("dao", ["dao", "serve", "--port", str(dao), *gov], f"{dao_url}/dao"),
        ("market", ["serve", "market", "--operator", "ops", "--port", str(m), *gov],
         f"{market}/_health"),
        ("web", ["serve", "web", "--port", str(w), "--workers", str(workers),
                 "--data-dir", str(root / "web"), *web_args], f"{web}/_health"),
        ("baseline", ["serve", "web", "--port", str(b), "--cache-ttl", "0",
                      "--data-dir", str(root / "baseline"), *web_args], f"{base}/_health"),
    ]  # fmt: skip
    procs: list[Any] = []
    try:
        for name, args, health in specs:
            procs.append(_cli(root, name, args))
            _wait(health, procs[-1], name)
        accounts, uris = _populate(pds, users, posts, follows)
    except BaseException:
        _stop(procs)
        raise
    return procs, (web, base), accounts, uris


def _stop(procs: list[Any]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _populate(
    pds: str, users: int, posts: int, follows: int
) -> tuple[list[dict[str, str]], list[str]]:
    """Accounts that post and follow, once the app view has indexed them."""
    accounts, uris = [], []
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
                r = c.post("/xrpc/com.atproto.repo.createRecord", json=body, headers=auth)
                r.raise_for_status()
                if collection == "app.bsky.feed.post":
                    uris.append(str(r.json()["uri"]))
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
    return accounts, uris


def _figures(out: dict[str, list[float]], elapsed: float) -> dict[str, Any]:
    every = [v for kind in PAGES for v in out[kind]]
    whole = [v for kind in PAGES for v in out[f"{kind}_whole"]]
    figures: dict[str, Any] = {
        "requests": len(every),
        "ttfb_p50_ms": _p(every, 0.5),
        "ttfb_p95_ms": _p(every, 0.95),
        "page_p95_ms": _p(whole, 0.95),
        "ttfb_mean_ms": round(statistics.fmean(every), 2) if every else 0.0,
        "pages_per_s": round(len(every) / elapsed, 1) if elapsed else 0.0,
        "retried": len(out.get("retried", [])),
        "failed": len(out.get("failed", [])),
    }
    for kind in PAGES:
        figures[f"{kind}_ttfb_p95_ms"] = _p(out[kind], 0.95)
    figures["load_avg"] = round(os.getloadavg()[0], 2)
    return figures


def _cpu_s(pid: int) -> float:
    """CPU seconds (user and system) process ``pid`` and its descendants have used (Linux;
    0.0 where /proc cannot tell)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(_cpu_s(int(child)) for child in children)


async def _sign_in_all(web: str, accounts: list[dict[str, str]]) -> list[dict[str, str]]:
    """Each account's session cookies on ``web``."""
    clients = list(await asyncio.gather(*(_signed_in(web, a) for a in accounts)))
    jars = [dict(c.cookies.items()) for c in clients]
    for c in clients:
        await c.aclose()
    return jars


async def _browse(
    web: str, jars: list[dict[str, str]], plan: tuple[list[str], list[str]], *,
    requests: int, think_ms: float, seed: int,
) -> tuple[dict[str, list[float]], float]:  # fmt: skip
    clients = []
    for jar in jars:
        c = _client(web)
        c.cookies.update(jar)
        clients.append(c)
    kinds = (*PAGES, *(f"{kind}_whole" for kind in PAGES), "retried", "failed")
    out: dict[str, list[float]] = {kind: [] for kind in kinds}
    rng = random.Random(seed)
    t0 = time.perf_counter()
    try:
        await asyncio.gather(*(
            _user(c, random.Random(rng.random()), plan, requests=requests,
                  think_ms=think_ms, out=out)
            for c in clients
        ))  # fmt: skip
    finally:
        for c in clients:
            await c.aclose()
    return out, time.perf_counter() - t0


def _browse_part(
    web: str, jars: list[dict[str, str]], plan: tuple[list[str], list[str]], *,
    requests: int, think_ms: float, seed: int,
) -> tuple[dict[str, list[float]], float]:  # fmt: skip
    """One client process's users browsing: their timings, and how long they took."""
    return asyncio.run(_browse(web, jars, plan, requests=requests, think_ms=think_ms, seed=seed))


def _load(
    web: str,
    accounts: list[dict[str, str]],
    uris: list[str],
    *,
    requests: int,
    think_ms: float,
    seed: int,
    pid: int,
) -> dict[str, Any]:
    """The users browse ``web`` from :data:`CLIENT_PROCESSES` processes (one event loop
    for 50 users would delay reading the answers it times); the figures."""
    jars = asyncio.run(_sign_in_all(web, accounts))
    plan = ([a["did"] for a in accounts], uris)
    parts = [jars[i::CLIENT_PROCESSES] for i in range(CLIENT_PROCESSES)]
    cpu0 = _cpu_s(pid)
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(CLIENT_PROCESSES, mp_context=ctx) as pool:
        futures = [
            pool.submit(
                _browse_part,
                web,
                part,
                plan,
                requests=requests,
                think_ms=think_ms,
                seed=seed * 1000 + i,
            )
            for i, part in enumerate(parts)
            if part
        ]
        results = [f.result() for f in futures]
    cpu = _cpu_s(pid) - cpu0
    out: dict[str, list[float]] = {kind: [] for kind in results[0][0]}
    for part_out, _ in results:
        for kind, values in part_out.items():
            out[kind] += values
    figures = _figures(out, max(elapsed for _, elapsed in results))
    pages = len(out["failed"]) + figures["requests"]
    figures["web_cpu_ms_per_page"] = round(cpu * 1000 / max(1, pages), 2)
    return figures


def run(
    *,
    users: int = 50,
    requests: int = 20,
    posts: int = 2,
    follows: int = 10,
    think_ms: float = 1000.0,
    baseline: bool = True,
    seed: int = 1,
    workers: int | None = None,
) -> dict[str, Any]:
    """Run the benchmark (see the module docstring); the figures as a dict."""
    follows = min(follows, users - 1)
    workers = workers or web_workers()
    with tempfile.TemporaryDirectory(prefix="plaza-bench-web-") as tmp:
        procs, (web, base), accounts, uris = _network(Path(tmp), users, posts, follows, workers)
        try:
            result: dict[str, Any] = {"users": users, "think_ms": think_ms, "workers": workers}
            result |= _load(
                web, accounts, uris, requests=requests, think_ms=think_ms, seed=seed,
                pid=procs[-2].pid,
            )  # fmt: skip
            if baseline:
                result["baseline"] = _load(
                    base, accounts, uris, requests=requests, think_ms=think_ms, seed=seed,
                    pid=procs[-1].pid,
                )  # fmt: skip
            did, _, rkey = uris[0].removeprefix("at://").split("/")
            js = _js_bytes(web, {
                "signin": "/signin", "home": "/", "profile": f"/profile/{did}",
                "thread": f"/post/{did}/{rkey}", "governance": "/governance",
                "members": "/governance/members", "network": "/network",
            })  # fmt: skip
        finally:
            _stop(procs)
    return result | js
