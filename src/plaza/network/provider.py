"""The hosting provider's daemon: reports usage, bids and signs, over the market's HTTP API.

Theory of operation. A hosting provider runs a PDS and this daemon beside it. The
daemon holds the provider's signing key and talks to the market only through its
public HTTP API, with signed documents (the market's operator token is never needed).
Every ``interval`` seconds it reads what the market shows — its parameters and clock,
the provider's registry entry, its contracts, the open requests for bids — and the
number of accounts its PDS hosts (``social.plaza.provider.getUsage``, admin
authenticated), and :func:`decide` turns that :class:`View` into :class:`Step` values:

1. **sign** every contract awarded to it that it has not signed yet, at no less than
   its own account price (the terms' digest is what it signs);
2. **report** usage once per running contract and ended epoch: the accounts its PDS
   hosts (the market caps them at the contracted quantity); a provider of another
   service (``ProviderPolicy.service``: a labeler) reports the accounts it serves,
   those the host it follows lists (``com.atproto.sync.listRepos``, public);
3. **bid** on each open hosting request in one of its regions that it has not bid on,
   that caps only units it prices, whose maximum prices its prices meet and whose SLA
   it can promise: as many accounts as it has spare capacity for (registered capacity
   less what its contracts and open bids hold), pledging the request's minimum bond
   if its free bond covers it, the bid expiring ``bid_ttl_s`` after the deadline.

:func:`decide` is pure; :class:`ProviderDaemon` does the I/O. A document the market
refuses is not retried (the refusal is printed with the market's reason: a replayed
report after a restart, a request that closed meanwhile); the next pass decides afresh
from what the market then shows. A provider without a contract yet is a standby
provider: it only bids.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from plaza.atproto import datamodel
from plaza.atproto.crypto import PrivateKey
from plaza.errors import InvalidInputError
from plaza.market.params import MarketParams
from plaza.market.registry import BIDDABLE
from plaza.market.signed import new_nonce, sign_doc

HOSTING = "hosting"


@dataclass(frozen=True)
class ProviderPolicy:
    """What the provider offers: prices per unit (integer millionths of a minor unit,
    the market's scale; empty: its registered hosting prices), the SLA it promises,
    and how long its bids stay valid after a request's deadline. ``service``: the one
    whose contracts it reports usage for (and signs at its registered prices)."""

    prices: Mapping[str, int] = field(default_factory=dict)
    service: str = HOSTING
    availability_ppm: int = 999_000
    latency_p95_ms: int = 1_000
    durability_ppm: int = 999_999
    bid_ttl_s: int = 3_600


@dataclass(frozen=True)
class View:
    """What the market and the PDS show at ``now_ms`` (the market's clock).

    ``me`` is the provider's registry entry (``GET /market/providers/{did}``);
    ``contracts`` its contracts; ``rfbs`` the requests for bids with, for each, the
    providers that bid on it (``bidders``) and the quantity and bond each open bid
    holds (``bids``); ``hosted`` the accounts its PDS hosts (None: the PDS did not
    answer); ``reported`` the (contract, epoch) usage reports already sent."""

    now_ms: int
    params: MarketParams
    me: Mapping[str, Any]
    contracts: tuple[Mapping[str, Any], ...]
    rfbs: tuple[Mapping[str, Any], ...]
    my_bids: tuple[Mapping[str, Any], ...] = ()
    hosted: int | None = None
    reported: frozenset[tuple[str, int]] = frozenset()


@dataclass(frozen=True)
class Step:
    """One thing to do: ``sign`` a contract, ``report`` usage, or ``bid`` on a request.
    ``body`` is the unsigned document's fields; ``why`` says why in words."""

    kind: str
    body: Mapping[str, Any]
    why: str


def _prices(me: Mapping[str, Any], policy: ProviderPolicy) -> dict[str, int]:
    if policy.prices:
        return dict(policy.prices)
    return {k: int(v) for k, v in me.get("prices", {}).get(policy.service, {}).items()}


def _running(c: Mapping[str, Any]) -> bool:
    return c.get("status") != "ended" and not c.get("standing", False)


def spare_accounts(view: View) -> int:
    """Hosting accounts the provider can still offer: registered capacity less what its
    running contracts and open bids hold."""
    cap = int(view.me.get("capacity", {}).get(HOSTING, {}).get("accounts", 0))
    held = sum(
        int(c["quantity"]) - int(c.get("released", 0))
        for c in view.contracts
        if c["service"] == HOSTING and _running(c)
    )
    held += sum(int(b["quantity"]) for b in view.my_bids)
    return max(0, cap - held)


def free_bond(view: View) -> int:
    """The part of the received bond that open bids and contracts do not pledge."""
    pledged = sum(int(b.get("bond", 0)) for b in view.my_bids)
    pledged += sum(int(c.get("bond", 0)) for c in view.contracts if _running(c))
    return max(0, int(view.me.get("bond", 0)) - pledged)


def _ran_in(c: Mapping[str, Any], lo: int, hi: int) -> bool:
    if not c.get("approval"):
        return False
    end = int(c["end_ms"])
    if c.get("ended_ms"):
        end = min(end, int(c["ended_ms"]))
    return max(lo, int(c["start_ms"])) < min(hi, end)


def decide(view: View, policy: ProviderPolicy) -> list[Step]:
    """The steps the provider takes now (see the module docstring). Pure."""
    me, did = view.me, str(view.me["did"])
    prices = _prices(me, policy)
    steps: list[Step] = []
    for c in view.contracts:
        if c.get("status") != "awarded" or c.get("provider_signed"):
            continue
        offered = int(c.get("unit_prices", {}).get("account", 0))
        if offered < prices.get("account", 0):
            continue  # never below its own price
        steps.append(
            Step(
                "sign",
                {"contract": c["id"], "terms_digest": c["terms_digest"]},
                f"{c['id']} was awarded to us: {c['quantity']} {c['service']} accounts",
            )
        )
    epoch = view.params.epoch_of(view.now_ms) - 1
    served = (
        f"our PDS hosts {view.hosted} accounts"
        if policy.service == HOSTING
        else f"we served the {view.hosted} accounts of the network"
    )
    if epoch >= 0 and view.hosted is not None:
        lo, hi = view.params.epoch_start(epoch), view.params.epoch_end(epoch)
        for c in view.contracts:
            if c["service"] != policy.service or (str(c["id"]), epoch) in view.reported:
                continue
            if c.get("standing") or not _ran_in(c, lo, hi):
                continue
            steps.append(
                Step(
                    "report",
                    {"contract": c["id"], "epoch": epoch, "usage": {"account": view.hosted}},
                    f"epoch {epoch} ended: {served}",
                )
            )
    if me.get("status") not in BIDDABLE or HOSTING not in me.get("services", ()):
        return steps
    spare, bond = spare_accounts(view), free_bond(view)
    regions = set(me.get("regions", ()))
    sla = {
        "availability_ppm": policy.availability_ppm,
        "latency_p95_ms": policy.latency_p95_ms,
        "durability_ppm": policy.durability_ppm,
    }
    for r in view.rfbs:
        if spare <= 0:
            break
        if r["service"] != HOSTING or r.get("awarded") or r["region"] not in regions:
            continue
        if did in r.get("bidders", ()) or view.now_ms >= int(r["deadline_ms"]):
            continue
        if len(r.get("bids", ())) >= int(r["max_bids"]):
            continue
        caps = {k: int(v) for k, v in r["max_prices"].items()}
        if any(u not in prices or prices[u] > cap for u, cap in caps.items()):
            continue
        want = r.get("sla", {})
        if (
            sla["availability_ppm"] < int(want.get("availability_ppm", 0))
            or sla["latency_p95_ms"] > int(want.get("latency_p95_ms", 600_000))
            or sla["durability_ppm"] < int(want.get("durability_ppm", 0))
        ):
            continue
        pledge = max(int(r.get("min_bond", 0)), view.params.bid_bond_min)
        if pledge > bond:
            continue
        quantity = min(spare, int(r["quantity"]))
        spare -= quantity
        bond -= pledge
        steps.append(
            Step(
                "bid",
                {
                    "rfb": r["id"],
                    "quantity": quantity,
                    "prices": {u: prices[u] for u in caps},
                    "sla": sla,
                    "bond": pledge,
                    "expires_ms": int(r["deadline_ms"]) + policy.bid_ttl_s * 1000,
                },
                f"{r['id']} wants {r['quantity']} hosting accounts in {r['region']}; "
                f"we have room for {quantity}",
            )
        )
    return steps


def document(step: Step, did: str, market: str, key: PrivateKey) -> dict[str, Any]:
    """The signed document for ``step``."""
    kind = {"sign": "terms", "report": "usage", "bid": "bid"}[step.kind]
    return sign_doc(
        key,
        {"$type": kind, "provider": did, "market": market, **step.body, "nonce": new_nonce()},
    )


def _path(step: Step) -> str:
    if step.kind == "sign":
        return f"/market/contracts/{step.body['contract']}/sign"
    return "/market/usage" if step.kind == "report" else "/market/bids"


@dataclass
class ProviderDaemon:
    """Observes, decides and posts (see the module docstring). ``say`` gets progress
    lines, ``warn`` errors; neither ever sees the PDS's admin password."""

    did: str
    key: PrivateKey = field(repr=False)
    market_url: str
    pds_url: str
    admin_password: str = field(repr=False, default="")
    policy: ProviderPolicy = field(default_factory=ProviderPolicy)
    timeout_s: float = 10.0
    say: Callable[[str], None] = print
    warn: Callable[[str], None] = print
    client: httpx.AsyncClient | None = None
    reported: set[tuple[str, int]] = field(default_factory=set)
    _bids: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.market_url = self.market_url.rstrip("/")
        self.pds_url = self.pds_url.rstrip("/")

    async def _http(self) -> httpx.AsyncClient:
        if self.client is None:
            self.client = httpx.AsyncClient(timeout=self.timeout_s)
        return self.client

    async def _get(self, path: str, **params: Any) -> Any:
        client = await self._http()
        r = await client.get(f"{self.market_url}{path}", params=params or None)
        if r.status_code != 200:
            raise InvalidInputError(f"GET {path} answered {r.status_code}: {r.text[:200]}")
        return r.json()

    async def hosted(self) -> int | None:
        """Accounts the PDS hosts (``getUsage``, paged), or None if it does not answer;
        for another service, the accounts the host lists (``listRepos``, paged)."""
        client = await self._http()
        if self.policy.service != HOSTING:
            return await self._listed(client)
        count, cursor = 0, None
        try:
            while True:
                params: dict[str, Any] = {"limit": 1000}
                if cursor:
                    params["cursor"] = cursor
                r = await client.get(
                    f"{self.pds_url}/xrpc/social.plaza.provider.getUsage",
                    params=params,
                    auth=("admin", self.admin_password),
                )
                if r.status_code != 200:
                    self.warn(f"getUsage at {self.pds_url} answered {r.status_code}")
                    return None
                body = r.json()
                count += len(body.get("accounts", []))
                cursor = body.get("cursor")
                if not cursor:
                    return count
        except httpx.HTTPError as exc:
            self.warn(f"cannot reach the PDS at {self.pds_url}: {type(exc).__name__}")
            return None

    async def _listed(self, client: httpx.AsyncClient) -> int | None:
        count, cursor = 0, None
        try:
            while True:
                params: dict[str, Any] = {"limit": 1000}
                if cursor:
                    params["cursor"] = cursor
                r = await client.get(
                    f"{self.pds_url}/xrpc/com.atproto.sync.listRepos", params=params
                )
                if r.status_code != 200:
                    self.warn(f"listRepos at {self.pds_url} answered {r.status_code}")
                    return None
                body = r.json()
                repos = body.get("repos", [])
                count += sum(1 for x in repos if x.get("active", True))
                cursor = body.get("cursor")
                if not cursor or not repos:
                    return count
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            self.warn(f"cannot list the accounts at {self.pds_url}: {type(exc).__name__}")
            return None

    async def view(self) -> View:
        """Read the market and the PDS."""
        summary = await self._get("/market")
        if not summary.get("params"):
            raise InvalidInputError(f"the market at {self.market_url} is not open")
        me = await self._get(f"/market/providers/{self.did}")
        contracts = [c for c in await self._get("/market/contracts") if c["provider"] == self.did]
        rfbs = []
        mine: list[dict[str, Any]] = []
        for r in await self._get("/market/rfbs"):
            if r.get("awarded"):
                continue
            bidders = []
            for bid in r.get("bids", []):
                if bid not in self._bids:
                    self._bids[bid] = await self._get(f"/market/bids/{bid}")
                b = self._bids[bid]
                bidders.append(b["provider"])
                if b["provider"] == self.did:
                    mine.append(b)
            rfbs.append({**r, "bidders": bidders})
        return View(
            now_ms=int(summary["now"]),
            params=MarketParams.from_map(summary["params"]),
            me={**me, "market": summary["operator"]},
            contracts=tuple(contracts),
            rfbs=tuple(rfbs),
            my_bids=tuple(mine),
            hosted=await self.hosted(),
            reported=frozenset(self.reported),
        )

    async def tick(self) -> list[tuple[Step, bool]]:
        """One pass: observe, decide, post each step; returns each step and whether the
        market accepted it."""
        v = await self.view()
        client = await self._http()
        done = []
        for step in decide(v, self.policy):
            doc = document(step, self.did, str(v.me["market"]), self.key)
            r = await client.post(f"{self.market_url}{_path(step)}", json=datamodel.to_json(doc))
            ok = r.status_code == 200
            if step.kind == "report":
                # Accepted or refused (a replay after a restart, a settled epoch), the
                # report for this contract and epoch is not sent again.
                self.reported.add((str(step.body["contract"]), int(step.body["epoch"])))
            target = step.body.get("contract") or step.body.get("rfb")
            if ok:
                self.say(f"{step.kind} {target}: {step.why}")
            else:
                self.warn(f"the market refused {step.kind} {target}: {_error(r)}")
            done.append((step, ok))
        return done

    async def run(self, interval_s: float, stop: asyncio.Event) -> None:
        """Tick until ``stop`` is set; a failed pass is reported and the next one runs."""
        while not stop.is_set():
            try:
                await self.tick()
            except (httpx.HTTPError, InvalidInputError, KeyError, ValueError) as exc:
                self.warn(f"pass failed: {type(exc).__name__}: {exc}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval_s)

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.aclose()


def _error(r: httpx.Response) -> str:
    try:
        body = r.json()
        return f"{body.get('error', r.status_code)}: {body.get('message', '')}"
    except ValueError:
        return f"HTTP {r.status_code}"


def run_forever(daemon: ProviderDaemon, interval_s: float) -> None:
    """Run ``daemon`` in the foreground until SIGINT or SIGTERM."""
    import signal

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await daemon.run(interval_s, stop)
        finally:
            await daemon.aclose()

    asyncio.run(main())
