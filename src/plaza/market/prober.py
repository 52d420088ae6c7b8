"""The prober: an independent service that probes contracted providers and signs what it saw.

Theory of operation. A prober is a provider registered for the ``prober`` service. It
reads the market's public API for the contracts in force and the endpoints of their
providers, and every ``interval`` seconds probes each provider (never itself):

1. ``GET {endpoint}/xrpc/_health`` must answer 200;
2. a real read: for a hosting provider ``com.atproto.sync.listRepos?limit=1`` to learn
   a hosted repository, then ``com.atproto.sync.getLatestCommit?did=...``, which must
   answer 200 with a ``cid`` and a ``rev`` (a host with no repository yet is judged on
   its health alone); for a labeler ``com.atproto.label.queryLabels?uriPatterns=*``,
   which must answer 200 with a ``labels`` list (its label latency as a reader sees it).

A sample is up when every step succeeded within the timeout; its latency is the read's
(the health check's when there was no read). Samples are grouped by probe window
(:class:`~plaza.market.params.MarketParams`): a window is up for a provider only if
every sample in it was, and its latency is the median of its samples. When a window
closes the prober signs one ``probe`` document holding a one-window series per
provider and posts it to ``/market/probes``. Submission is retried on the next tick if
the market could not be reached; a window the market refuses is dropped with the
reason logged (a replay, a settled epoch).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from plaza.atproto import datamodel
from plaza.atproto.crypto import PrivateKey
from plaza.market.params import MarketParams
from plaza.market.probes import TIMEOUT_MS, encode_series
from plaza.market.signed import new_nonce, sign_doc

log = logging.getLogger(__name__)

PROBED_SERVICES = frozenset({"hosting", "relay", "appview", "labeler", "directory"})


@dataclass(frozen=True, slots=True)
class Target:
    """A provider to probe: its DID, endpoint and whether it hosts repositories."""

    provider: str
    endpoint: str
    reads_repos: bool
    reads_labels: bool = False


@dataclass(frozen=True, slots=True)
class Sample:
    provider: str
    ok: bool
    latency_ms: int
    detail: str


async def probe_target(client: httpx.AsyncClient, target: Target, timeout_s: float) -> Sample:
    """Probe one provider (see the module docstring)."""
    base = target.endpoint.rstrip("/")
    try:
        t0 = time.perf_counter()
        r = await client.get(f"{base}/xrpc/_health", timeout=timeout_s)
        latency = int((time.perf_counter() - t0) * 1000)
        if r.status_code != 200:
            return Sample(target.provider, False, latency, f"_health answered {r.status_code}")
        if target.reads_labels:
            return await _read_labels(client, target, base, timeout_s)
        if not target.reads_repos:
            return Sample(target.provider, True, latency, "healthy")
        r = await client.get(
            f"{base}/xrpc/com.atproto.sync.listRepos", params={"limit": 1}, timeout=timeout_s
        )
        repos = r.json().get("repos", []) if r.status_code == 200 else None
        if repos is None:
            return Sample(target.provider, False, latency, f"listRepos answered {r.status_code}")
        if not repos:
            return Sample(target.provider, True, latency, "healthy, no repository to read")
        did = repos[0]["did"]
        t0 = time.perf_counter()
        r = await client.get(
            f"{base}/xrpc/com.atproto.sync.getLatestCommit", params={"did": did}, timeout=timeout_s
        )
        latency = int((time.perf_counter() - t0) * 1000)
        body = r.json() if r.status_code == 200 else {}
        if r.status_code != 200 or "cid" not in body or "rev" not in body:
            return Sample(
                target.provider, False, latency, f"getLatestCommit answered {r.status_code}"
            )
        return Sample(target.provider, True, latency, f"read {did} at rev {body['rev']}")
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        return Sample(target.provider, False, TIMEOUT_MS, f"{type(exc).__name__}: {exc}")


async def _read_labels(
    client: httpx.AsyncClient, target: Target, base: str, timeout_s: float
) -> Sample:
    t0 = time.perf_counter()
    r = await client.get(
        f"{base}/xrpc/com.atproto.label.queryLabels",
        params={"uriPatterns": "*", "limit": 1},
        timeout=timeout_s,
    )
    latency = int((time.perf_counter() - t0) * 1000)
    body = r.json() if r.status_code == 200 else {}
    if r.status_code != 200 or not isinstance(body.get("labels"), list):
        return Sample(target.provider, False, latency, f"queryLabels answered {r.status_code}")
    return Sample(target.provider, True, latency, f"read {len(body['labels'])} labels")


@dataclass
class Prober:
    """Probes, aggregates by window, signs and submits (see the module docstring)."""

    did: str
    key: PrivateKey = field(repr=False)
    market_url: str
    timeout_s: float = 5.0
    clock: Callable[[], int] = field(default=lambda: int(time.time() * 1000))
    client: httpx.AsyncClient | None = None
    params: MarketParams | None = None
    market: str = ""  # the market's operator DID, the audience of the probe documents
    windows: dict[int, dict[str, list[Sample]]] = field(default_factory=dict)
    submitted: list[int] = field(default_factory=list)
    on_submit: Callable[[int, dict[str, Any]], Awaitable[None]] | None = None

    async def _http(self) -> httpx.AsyncClient:
        if self.client is None:
            self.client = httpx.AsyncClient()
        return self.client

    async def load_params(self) -> MarketParams:
        client = await self._http()
        r = await client.get(f"{self.market_url}/market", timeout=self.timeout_s)
        r.raise_for_status()
        body = r.json()
        self.params = MarketParams.from_map(body["params"])
        self.market = str(body["operator"])
        return self.params

    async def targets(self) -> list[Target]:
        """Providers with a contract in force (other than this prober)."""
        client = await self._http()
        cs = await client.get(f"{self.market_url}/market/contracts", params={"status": "active"})
        ps = await client.get(f"{self.market_url}/market/providers")
        cs.raise_for_status()
        ps.raise_for_status()
        endpoints = {p["did"]: p for p in ps.json()}
        seen: dict[str, Target] = {}
        for c in cs.json():
            did = c["provider"]
            if did == self.did or did not in endpoints or c["service"] not in PROBED_SERVICES:
                continue
            was = seen.get(did, Target(did, "", False))
            reads = c["service"] == "hosting" or was.reads_repos
            labels = c["service"] == "labeler" or was.reads_labels
            seen[did] = Target(did, endpoints[did]["endpoint"], reads, labels)
        return [seen[d] for d in sorted(seen)]

    async def tick(self) -> list[Sample]:
        """Probe every target once and file the samples under the current window."""
        params = self.params or await self.load_params()
        client = await self._http()
        targets = await self.targets()
        samples = await asyncio.gather(*(probe_target(client, t, self.timeout_s) for t in targets))
        window = params.window_of(self.clock())
        bucket = self.windows.setdefault(window, {})
        for s in samples:
            bucket.setdefault(s.provider, []).append(s)
        return list(samples)

    def document(self, window: int) -> dict[str, Any]:
        """The signed ``probe`` document for a closed ``window``."""
        series = []
        for provider, samples in sorted(self.windows[window].items()):
            up = all(s.ok for s in samples)
            latency = int(statistics.median(s.latency_ms for s in samples))
            series.append(encode_series(provider, window, [up], [latency]))
        return sign_doc(
            self.key,
            {
                "$type": "probe",
                "prober": self.did,
                "market": self.market,
                "series": series,
                "nonce": new_nonce(),
            },
        )

    async def flush(self) -> list[int]:
        """Submit every closed window; return the windows submitted."""
        params = self.params if self.params and self.market else await self.load_params()
        client = await self._http()
        current = params.window_of(self.clock())
        done = []
        for window in sorted(w for w in self.windows if w < current):
            if not self.windows[window]:
                del self.windows[window]
                continue
            doc = self.document(window)
            try:
                r = await client.post(
                    f"{self.market_url}/market/probes",
                    json=datamodel.to_json(doc),
                    timeout=self.timeout_s,
                )
            except httpx.HTTPError as exc:
                log.warning("cannot reach the market (%s); will retry window %d", exc, window)
                break
            if r.status_code != 200:
                log.warning("the market refused window %d: %s", window, r.text[:300])
            else:
                done.append(window)
                self.submitted.append(window)
                if self.on_submit is not None:
                    await self.on_submit(window, doc)
            del self.windows[window]
        return done

    async def run(self, interval_s: float, stop: asyncio.Event) -> None:
        """Tick and flush until ``stop`` is set."""
        while not stop.is_set():
            try:
                await self.tick()
                await self.flush()
            except httpx.HTTPError as exc:
                log.warning("probe round failed: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval_s)

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.aclose()


def run_forever(prober: Prober, interval_s: float) -> None:
    """Run ``prober`` in the foreground until SIGINT or SIGTERM, then submit what it can
    and close its connections."""
    import signal

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await prober.run(interval_s, stop)
        finally:
            with contextlib.suppress(httpx.HTTPError):
                await prober.flush()
            await prober.aclose()

    asyncio.run(main())
