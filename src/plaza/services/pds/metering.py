"""Metering: what each hosted account costs, for the market to pay for it.

Five quantities per account: records, repository bytes and blob bytes (read from the
store, so they are always exact), and requests and egress bytes (counted here). The
counts accumulate in memory and are flushed to the store every few seconds and at
shutdown, so the hot path pays a dictionary update, not a database write. A request
counts against the hosted account it concerns (the authenticated account, or the
``repo``/``did`` it reads); egress is the response body bytes, and firehose frames count
against the repository they describe.

Two views: ``social.plaza.provider.getUsage`` (admin-authenticated JSON) and Prometheus
text at ``/metrics``: per-method request counts and latencies for anyone, and the
per-account families too for the admin (HTTP Basic, as for getUsage) — what each member
does is not public.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from plaza.services.pds.store import PdsStore, UsageRow

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


_PROXIED = ("app.bsky.", "chat.bsky.")


class Meter:
    """In-memory request and egress counters per account, flushed to the store."""

    def __init__(self, store: PdsStore) -> None:
        self.store = store
        self._pending: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        self.registry = CollectorRegistry(auto_describe=True)
        self.xrpc_requests = Counter(
            "plaza_pds_xrpc_requests",
            "XRPC requests by method and HTTP status",
            ["method", "status"],
            registry=self.registry,
        )
        self.xrpc_seconds = Histogram(
            "plaza_pds_xrpc_seconds",
            "XRPC request latency by method",
            ["method"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
            registry=self.registry,
        )
        self.firehose_subscribers = Gauge(
            "plaza_pds_firehose_subscribers",
            "Open subscribeRepos connections",
            registry=self.registry,
        )
        self.firehose_refused = Counter(
            "plaza_pds_firehose_refused",
            "subscribeRepos connections refused because the subscriber limit was reached",
            registry=self.registry,
        )
        # Per-account usage is the admin's (as getUsage is): in a registry of its own.
        self.accounts_registry = CollectorRegistry(auto_describe=True)
        self.accounts_registry.register(_UsageCollector(self))
        self._children: dict[tuple[str, int], tuple[Any, Any]] = {}
        # NSIDs served here (set by the app): every other name a client sends is counted
        # under one label, so clients cannot grow the registry without end.
        self.methods: frozenset[str] = frozenset()

    def label(self, nsid: str) -> str:
        """The ``method`` label for a call of ``nsid``."""
        if nsid in self.methods:
            return nsid
        return "proxied" if nsid.startswith(_PROXIED) else "unknown"

    def observe(self, method: str, status: int, seconds: float) -> None:
        """Count one XRPC request of ``method`` and its latency."""
        child = self._children.get((method, status))
        if child is None:
            if len(self._children) > 10_000:  # bounded: method names come from clients
                self._children.clear()
            child = self._children[(method, status)] = (
                self.xrpc_requests.labels(method, str(status)),
                self.xrpc_seconds.labels(method),
            )
        child[0].inc()
        child[1].observe(seconds)

    def count(self, did: str | None, requests: int, egress: int) -> None:
        if did is None:
            return
        entry = self._pending[did]
        entry[0] += requests
        entry[1] += egress

    def flush(self) -> None:
        """Write pending counts to the store (one statement per account)."""
        if not self._pending:
            return
        pending, self._pending = self._pending, defaultdict(lambda: [0, 0])
        with self.store.transaction():
            self.store.add_usage([(d, r, e) for d, (r, e) in pending.items()])

    def usage(self, after: str | None, limit: int, did: str | None = None) -> list[UsageRow]:
        """Stored usage plus what is not flushed yet."""
        rows = self.store.usage_rows(after, limit, did)
        out = []
        for row in rows:
            extra = self._pending.get(row.did)
            if extra:
                row = UsageRow(
                    row.did,
                    row.records,
                    row.repo_bytes,
                    row.blob_bytes,
                    row.requests + extra[0],
                    row.egress_bytes + extra[1],
                )
            out.append(row)
        return out

    def exposition(self, *, accounts: bool = False) -> bytes:
        """Prometheus text: the service-wide families, and per-account usage if
        ``accounts`` (for the admin only)."""
        text = generate_latest(self.registry)
        if accounts:
            text += generate_latest(self.accounts_registry)
        return text


class _UsageCollector(Collector):
    def __init__(self, meter: Meter) -> None:
        self.meter = meter

    def collect(self) -> Iterator[Any]:
        rows: list[UsageRow] = []
        after: str | None = None
        while True:
            page = self.meter.usage(after, 1000)
            rows.extend(page)
            if len(page) < 1000:
                break
            after = page[-1].did
        families = [
            (
                GaugeMetricFamily,
                "plaza_pds_account_records",
                "Records in the repository",
                "records",
            ),
            (
                GaugeMetricFamily,
                "plaza_pds_account_repo_bytes",
                "Repository block bytes",
                "repo_bytes",
            ),
            (GaugeMetricFamily, "plaza_pds_account_blob_bytes", "Stored blob bytes", "blob_bytes"),
            (CounterMetricFamily, "plaza_pds_account_requests", "Requests served", "requests"),
            (
                CounterMetricFamily,
                "plaza_pds_account_egress_bytes",
                "Response bytes sent",
                "egress_bytes",
            ),
        ]
        for cls, name, doc, attr in families:
            fam = cls(name, doc, labels=["did"])
            for row in rows:
                fam.add_metric([row.did], getattr(row, attr))
            yield fam


class MeteringMiddleware:
    """ASGI middleware: per-method counts and latency, per-account requests and egress."""

    def __init__(self, app: ASGIApp, meter: Meter) -> None:
        self.app = app
        self.meter = meter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        sent = 0
        status = 500

        async def counting_send(message: Message) -> None:
            nonlocal sent, status
            if message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            elif message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            path: str = scope.get("path", "")
            if path.startswith("/xrpc/"):
                method = self.meter.label(path[6:])
                self.meter.observe(method, status, time.perf_counter() - start)
                state = scope.get("state") or {}
                self.meter.count(state.get("account_did"), 1, sent)
