"""``plaza bench market``: settlement over many providers, timed.

One run builds a market on the in-memory ledger (the simulator's mode) with
``providers`` hosting providers, each holding one active contract won through the real
path (signed registration, requests for bids of up to 500 bids, the award under the
mandate guard, signed terms, approval), and three probers. It then files one epoch of
evidence — every prober's signed samples of every provider for every window (288
five-minute windows by default), a signed usage report and an independent observation
per contract — and settles the epoch: an invoice per contract recomputed from the
evidence, the epoch close, penalties, and a payment per invoice from escrow. Finally it
replays the whole ledger into a fresh state (re-verifying every signature and every
invoice).

Reported per phase (median of ``runs``): seconds, and events per second where that is
the natural rate. Set-up is timed too but is not the subject: it writes about six events
per provider.
"""

from __future__ import annotations

import functools
import hashlib
import statistics
import time
from typing import Any

import numpy as np

from plaza.atproto.crypto import PrivateKey
from plaza.dao.mandate import parse_mandate
from plaza.ledger import Ledger, MemoryEventStore
from plaza.market import Market, MarketParams, MarketState, encode_series, sign_doc

GENESIS = 1_700_006_400_000  # 2023-11-15 00:00 UTC
DAY = 86_400_000
MANDATE = """
schema = 1
version = 1
title = "bench mandate"
currency = "EUR"

[limits]
max_provider_share_ppm = 1000000
hhi_ceiling = 10000
concentration_min_accounts = 0

[budgets.infrastructure]
limit = 9000000000000
period = "30d"

[actions."rfb.create"]
class = "automatic"

[actions."contract.award"]
class = "automatic"
category = "infrastructure"

[actions."settlement.pay"]
class = "automatic"
category = "infrastructure"

[actions."escrow.release"]
class = "automatic"

[actions."provider.suspend"]
class = "automatic"
"""
BIDS_PER_RFB = 500
SERIES_PER_DOC = 150


def _key(n: int) -> PrivateKey:
    return PrivateKey.from_bytes("ES256K", hashlib.sha256(n.to_bytes(8, "big")).digest())


@functools.cache
def _did(n: int) -> str:
    """Party ``n``'s DID: the did:key of its key (a registration proves it by itself)."""
    return _key(n).did_key()


def build(providers: int) -> tuple[Market, dict[str, Any]]:
    """A market with ``providers`` contracted hosting providers and three probers."""
    op = _key(10**9)
    market = Market(
        Ledger(MemoryEventStore()),
        operator_did=op.did_key(),
        operator_key=op,
        mandate=parse_mandate(MANDATE),
    )
    params = MarketParams(genesis_ms=GENESIS, epoch_s=86_400, window_s=300)
    market.open(params, GENESIS - 10 * DAY)
    keys = {i: _key(i) for i in range(providers + 3)}
    index = {_did(i): i for i in keys}
    t = GENESIS - 9 * DAY
    for i in range(providers + 3):
        prober = i >= providers
        market.register_provider(
            sign_doc(
                keys[i],
                {
                    "$type": "registration",
                    "provider": _did(i),
                    "market": market.operator_did,
                    "key": keys[i].did_key(),
                    "services": ["prober"] if prober else ["hosting"],
                    "regions": ["eu"],
                    "capacity": {} if prober else {"hosting": {"accounts": 1000}},
                    "prices": {} if prober else {"hosting": {"account": 2_000_000}},
                    "bond": 0 if prober else 10_000,
                    "endpoint": f"https://p{i}.example",
                    "nonce": f"r{i}",
                    "signed_ms": t,
                },
            ),
            t,
        )
        if not prober:
            market.receive_bond(_did(i), 10_000, f"bond-{i}", t)
    rng = np.random.default_rng(7)
    rfbs = []
    for start in range(0, providers, BIDS_PER_RFB):
        group = range(start, min(providers, start + BIDS_PER_RFB))
        rfb = market.create_rfb(
            {
                "service": "hosting",
                "quantity": 100 * len(group),
                "region": "eu",
                "start_ms": GENESIS,
                "term_s": 30 * 86_400,
                "max_prices": {"account": 5_000_000, "gb_hour": 100_000, "request": 100},
                "deadline_ms": GENESIS - 2 * DAY,
                "max_bids": BIDS_PER_RFB,
                "profile": {"gb_hour": 24, "request": 1000},
            },
            GENESIS - 8 * DAY,
        )
        for i in group:
            market.submit_bid(
                sign_doc(
                    keys[i],
                    {
                        "$type": "bid",
                        "provider": _did(i),
                        "market": market.operator_did,
                        "rfb": rfb.id,
                        "quantity": 100,
                        "prices": {
                            "account": int(rng.integers(1_000_000, 5_000_000)),
                            "gb_hour": 50_000,
                            "request": 50,
                        },
                        "sla": {"availability_ppm": 999_000, "latency_p95_ms": 500},
                        "bond": 5_000,
                        "expires_ms": GENESIS,
                        "nonce": f"b{i}",
                    },
                ),
                GENESIS - 7 * DAY,
            )
        rfbs.append(rfb.id)
    # Ledger time never runs backwards: every request and bid first, then the awards.
    for rid in rfbs:
        _, contracts = market.award(rid, GENESIS - 2 * DAY)
        for c in contracts:
            i = index[c.provider]
            market.sign_contract(
                sign_doc(
                    keys[i],
                    {
                        "$type": "terms",
                        "provider": c.provider,
                        "market": market.operator_did,
                        "contract": c.id,
                        "terms_digest": c.terms_digest(),
                        "nonce": f"t{i}",
                    },
                ),
                GENESIS - DAY,
            )
            market.approve_contract(c.id, GENESIS - DAY)
    market.fund_escrow(10**12, GENESIS - DAY)
    return market, {"keys": keys, "providers": providers, "index": index}


def evidence(market: Market, ctx: dict[str, Any]) -> int:
    """File one epoch of probes, usage and observations; return the events written."""
    keys, n = ctx["keys"], ctx["providers"]
    wpe = market.state.params.windows_per_epoch
    after = GENESIS + DAY + 60_000
    rng = np.random.default_rng(11)
    # A provider in ten is down for a few windows, seen by all three probers.
    down = {i: set(rng.integers(0, wpe, 5).tolist()) for i in range(0, n, 10)}
    events = 0
    for p in range(n, n + 3):
        for start in range(0, n, SERIES_PER_DOC):
            series = []
            for i in range(start, min(n, start + SERIES_PER_DOC)):
                up = np.ones(wpe, dtype=np.int8)
                for w in down.get(i, ()):
                    up[w] = 0
                lat = rng.integers(40, 400, wpe)
                series.append(encode_series(_did(i), 0, up, lat))
            doc = sign_doc(
                keys[p],
                {
                    "$type": "probe",
                    "prober": _did(p),
                    "market": market.operator_did,
                    "series": series,
                    "nonce": f"{start}",
                },
            )
            market.report_probes(doc, after)
            events += 1
    observer = n
    for c in sorted(market.state.contracts.values(), key=lambda c: c.id):
        i = ctx["index"][c.provider]
        usage = {"account": 100, "gb_hour": 2400, "request": 100_000}
        market.report_usage(
            sign_doc(keys[i], {"$type": "usage", "provider": c.provider,
                               "market": market.operator_did, "contract": c.id,
                               "epoch": 0, "usage": usage, "nonce": f"u{i}"}),
            after,
        )  # fmt: skip
        market.report_observation(
            sign_doc(keys[observer], {"$type": "observation", "observer": _did(observer),
                                      "market": market.operator_did,
                                      "contract": c.id, "epoch": 0, "usage": usage,
                                      "nonce": f"o{i}"}),
            after,
        )  # fmt: skip
        events += 2
    return events


def run(*, runs: int = 3, providers: int = 10_000) -> dict[str, Any]:
    """Median timings of ``runs`` runs (see the module docstring)."""
    phases: dict[str, list[float]] = {"setup": [], "evidence": [], "settle": [], "replay": []}
    counts: dict[str, int] = {}
    for _ in range(runs):
        t0 = time.perf_counter()
        market, ctx = build(providers)
        t1 = time.perf_counter()
        counts["evidence_events"] = evidence(market, ctx)
        t2 = time.perf_counter()
        result = market.settle(0, GENESIS + DAY + 120_000)
        t3 = time.perf_counter()
        fresh = MarketState()
        for ev in market.ledger.read():
            fresh.apply(ev)
        t4 = time.perf_counter()
        assert fresh.fingerprint() == market.state.fingerprint()
        phases["setup"].append(t1 - t0)
        phases["evidence"].append(t2 - t1)
        phases["settle"].append(t3 - t2)
        phases["replay"].append(t4 - t3)
        counts.update(
            settle_events=result.events,
            invoices=len(result.invoices),
            payments=len(result.payments),
            paid_minor=result.paid,
            ledger_events=len(market.ledger),
            status_changes=len(result.status_changes),
        )
    med = {k: statistics.median(v) for k, v in phases.items()}
    return {
        "providers": providers,
        "windows_per_epoch": 288,
        "probers": 3,
        "runs": runs,
        "setup_s": round(med["setup"], 3),
        "evidence_s": round(med["evidence"], 3),
        "settle_s": round(med["settle"], 3),
        "settle_events_per_s": round(counts["settle_events"] / med["settle"]),
        "replay_s": round(med["replay"], 3),
        "replay_events_per_s": round(counts["ledger_events"] / med["replay"]),
        **counts,
    }
