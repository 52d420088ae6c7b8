"""The simulated providers and probers: their DIDs, keys, and the documents they sign.

Every simulated provider and prober holds its own ES256K key, derived from its number,
and signs its own registration, bids, contract terms, usage reports, observations and
probe samples with it — the market verifies each signature exactly as it would for a
real provider. Each one's DID is the ``did:key`` of its key, so its registration proves
itself as a real provider's must (a ``did:key`` names its own key). Nothing here decides
anything for the DAO: these are the other side of the market.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any

import numpy as np
from numpy.typing import NDArray

from plaza.atproto.crypto import PrivateKey
from plaza.market import encode_series, sign_doc

#: The simulated capacity pool's region name (simulated capacity has no geography; the
#: providers' home regions only steer account placement).
POOL = "global"
SERVICE = "hosting"


@functools.cache
def _key(who: str) -> PrivateKey:
    return PrivateKey.from_bytes("ES256K", hashlib.sha256(f"plaza-sim-{who}".encode()).digest())


@functools.cache
def provider_did(p: int) -> str:
    """The DID of simulated provider ``p`` (the did:key of its key)."""
    return _key(f"provider-{p}").did_key()


@functools.cache
def prober_did(i: int) -> str:
    """The DID of simulated prober ``i`` (the did:key of its key)."""
    return _key(f"prober-{i}").did_key()


class Parties:
    """Keys and document builders for ``providers`` providers and ``probers`` probers,
    signing for the market whose operator is ``market`` (every document names it)."""

    def __init__(self, providers: int, probers: int, seed: int, *, market: str) -> None:
        self.market = market
        self.providers = providers
        self.probers = probers
        self._pkeys = [_key(f"provider-{p}") for p in range(providers)]
        self._qkeys = [_key(f"prober-{i}") for i in range(probers)]
        self._index = {provider_did(p): p for p in range(providers)}
        rng = np.random.default_rng([seed, 31])
        #: Each provider's typical latency (ms) when healthy; probers measure around it.
        self.latency_ms = rng.integers(60, 240, providers).astype(np.float64)
        self._noise = np.random.default_rng([seed, 37])

    def index(self, did: str) -> int:
        """The number of the simulated provider with DID ``did``."""
        return self._index[did]

    def registration(
        self, p: int, *, capacity: int, lot_price: int, region: str, bond: int, now_ms: int
    ) -> dict[str, Any]:
        key = self._pkeys[p]
        return sign_doc(
            key,
            {
                "$type": "registration",
                "provider": provider_did(p),
                "market": self.market,
                "key": key.did_key(),
                "services": [SERVICE],
                "regions": sorted({POOL, region}),
                "capacity": {SERVICE: {"accounts": capacity}},
                "prices": {SERVICE: {"account": 0, "request": lot_price}},
                "bond": bond,
                "endpoint": f"https://p{p}.providers.sim.plaza",
                "nonce": f"reg-{p}",
                "signed_ms": now_ms,
            },
        )

    def prober_registration(self, i: int, now_ms: int) -> dict[str, Any]:
        key = self._qkeys[i]
        return sign_doc(
            key,
            {
                "$type": "registration",
                "provider": prober_did(i),
                "market": self.market,
                "key": key.did_key(),
                "services": ["prober"],
                "regions": [POOL],
                "capacity": {},
                "prices": {},
                "bond": 0,
                "endpoint": f"https://probe{i}.probers.sim.plaza",
                "nonce": f"reg-probe-{i}",
                "signed_ms": now_ms,
            },
        )

    def bid(
        self, p: int, rfb: str, *, quantity: int, lot_price: int, expires_ms: int
    ) -> dict[str, Any]:
        """Provider ``p`` offers ``quantity`` lots at its list price, promising a p95 of
        twice its typical latency."""
        return sign_doc(
            self._pkeys[p],
            {
                "$type": "bid",
                "provider": provider_did(p),
                "market": self.market,
                "rfb": rfb,
                "quantity": quantity,
                "prices": {"account": 0, "request": lot_price},
                "sla": {
                    "availability_ppm": 999_000,
                    "latency_p95_ms": int(2 * self.latency_ms[p]),
                    "durability_ppm": 999_999,
                },
                "bond": 0,
                "expires_ms": expires_ms,
                "nonce": f"bid-{rfb}",
            },
        )

    def terms(self, p: int, contract: str, digest: str) -> dict[str, Any]:
        return sign_doc(
            self._pkeys[p],
            {
                "$type": "terms",
                "provider": provider_did(p),
                "market": self.market,
                "contract": contract,
                "terms_digest": digest,
                "nonce": f"terms-{contract}",
            },
        )

    def usage(self, p: int, contract: str, epoch: int, lot_steps: int) -> dict[str, Any]:
        """Provider ``p``'s report: ``lot_steps`` lots of capacity for one step each."""
        return sign_doc(
            self._pkeys[p],
            {
                "$type": "usage",
                "provider": provider_did(p),
                "market": self.market,
                "contract": contract,
                "epoch": epoch,
                "usage": {"request": lot_steps},
                "nonce": f"use-{contract}-{epoch}",
            },
        )

    def observation(self, i: int, contract: str, epoch: int, lot_steps: int) -> dict[str, Any]:
        return sign_doc(
            self._qkeys[i],
            {
                "$type": "observation",
                "observer": prober_did(i),
                "market": self.market,
                "contract": contract,
                "epoch": epoch,
                "usage": {"request": lot_steps},
                "nonce": f"obs-{contract}-{epoch}",
            },
        )

    def probe(
        self,
        i: int,
        epoch: int,
        first_window: int,
        usable: NDArray[np.float64],
        *,
        false_down: float = 0.0,
    ) -> dict[str, Any]:
        """Prober ``i``'s samples of every provider over the windows of ``usable`` (rows
        are windows, columns providers; 0 means the provider did not answer). A window is
        seen down when the provider could not serve; ``false_down`` is the share of
        windows this prober wrongly sees down (a broken prober the quorum must outvote).
        Latency is the provider's typical latency over its serving factor, with noise."""
        windows, n = usable.shape
        series = []
        for p in range(n):
            up = (usable[:, p] > 0).astype(np.int8)
            if false_down:
                up[self._noise.random(windows) < false_down] = 0
            slow = np.maximum(usable[:, p], 0.05)
            jitter = np.clip(self._noise.normal(1.0, 0.1, windows), 0.5, 2.0)
            lat = np.where(up == 1, self.latency_ms[p] / slow * jitter, 65_535)
            series.append(encode_series(provider_did(p), first_window, up, lat.astype(np.int64)))
        return sign_doc(
            self._qkeys[i],
            {
                "$type": "probe",
                "prober": prober_did(i),
                "market": self.market,
                "series": series,
                "nonce": f"probe-{i}-{epoch}-{first_window}",
            },
        )
