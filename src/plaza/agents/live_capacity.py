"""Live hosting capacity: keep enough accounts of hosting under contract for the load
and the plan's floor, buying them from the market.

Theory of operation. In a live network the load the agents can measure is accounts:
the accounts the hosting providers host plus the sign-ups waiting for a home. The
capacity they buy is accounts too: the quantity of the running hosting contracts.
Capacity counts as *usable* only while its provider's PDS answers and the provider is
not leaving; a dead or offboarded provider's contracts are *lost* capacity. Capacity
*coming* is what open requests for bids ask for and what awarded contracts will add
once signed and approved.

The rule is level-based and keeps no memory of its own: every pass the capacity the
network wants is the larger of the load forecast ``horizon_s`` ahead at the recent
growth rate (:class:`LoadHistory`) over ``threshold``, and the plan's floor
(``floor_accounts``, the hosting capacity the network is planned to keep whatever the
load). Usable plus coming capacity is what it has. A lost provider's contract leaves
"have" at once, a replacement request enters it at once (as coming) and stays in it
through award, signature and approval, so a loss is replaced exactly once.
:func:`decide` (pure):

1. **procure** (``capacity.procure``): when the network has less than it wants, one
   request for bids for the difference — up to the floor, and when the forecast passes
   ``threshold`` enough to bring it down to ``headroom`` (at least ``min_accounts``) —
   capped at ``max_account_price`` per account and epoch for a minimum term of
   ``min_term_s``. When the floor is short and providers' capacity is lost, the reason
   names the providers whose loss it replaces (rule ``capacity.replace-lost``);
2. **award** (``contract.award``, phase ``award``): each open hosting request once
   bidding has closed — its deadline has passed or it holds its maximum of bids, as
   the market requires (with no bids the award closes it, and step 1 asks again);
3. **approve** (``contract.award``, phase ``approve``): each awarded contract its
   provider has signed, once the award's verdict lets the agent sign for the DAO
   (``allow`` at once; ``optimistic`` after its veto window; a voted one is left to
   the proposal that carries it).

Every action passes the mandate guard in :class:`~plaza.agents.loop.AgentLoop` and is
recorded with its reason; :class:`CapacityExecutor` carries them out on the market.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from plaza.agents.settlement import Done
from plaza.agents.types import Action, MandateLimits, Reason
from plaza.errors import InvalidInputError
from plaza.market import PRICE_SCALE, Market
from plaza.market.data import MarketData

HOSTING = "hosting"


@dataclass(frozen=True)
class LiveCapacityDesired:
    """The plan: utilisation ``threshold`` that triggers a purchase, the ``headroom``
    utilisation a purchase aims at, how far ahead growth is projected, the floor of
    capacity kept whatever the load, and the terms of the requests (prices in the
    market's scale: millionths of a minor unit)."""

    threshold: float = 0.8
    headroom: float = 0.6
    horizon_s: int = 300
    growth_window_s: int = 600
    min_accounts: int = 10
    bid_window_s: int = 20
    term_s: int = 30 * 86_400
    min_term_s: int = 3_600
    max_account_price: int = 10_000_000
    region: str = ""
    #: Hosting accounts the network keeps under contract on live providers whatever the
    #: load (0: capacity follows the load alone).
    floor_accounts: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.headroom <= self.threshold <= 1:
            raise InvalidInputError("capacity plan: need 0 < headroom <= threshold <= 1")
        sizes = (self.horizon_s, self.growth_window_s, self.bid_window_s, self.min_accounts)
        if min(*sizes, self.floor_accounts) < 0:
            raise InvalidInputError("capacity plan: durations and sizes must be >= 0")


class LoadHistory:
    """Recent (time, load) samples of the agents' process, for the growth rate."""

    def __init__(self) -> None:
        self._samples: deque[tuple[int, int]] = deque()

    def add(self, now_ms: int, load: int, window_s: int) -> float:
        """Record ``load`` at ``now_ms``; return the growth in accounts per second over
        the last ``window_s`` (0 until two samples span some time; never negative)."""
        self._samples.append((now_ms, load))
        while len(self._samples) > 2 and self._samples[0][0] < now_ms - window_s * 1000:
            self._samples.popleft()
        t0, l0 = self._samples[0]
        if now_ms <= t0:
            return 0.0
        return max(0.0, (load - l0) / ((now_ms - t0) / 1000))


@dataclass(frozen=True)
class OpenRfb:
    """An open hosting request: what it asks, the bids it holds, and what awarding it
    now would commit (minor units: the cheapest bids up to the quantity, for the
    minimum term)."""

    id: str
    quantity: int
    deadline_ms: int
    bids: int
    max_bids: int
    offered: int
    commit: int


@dataclass(frozen=True)
class ToApprove:
    """An awarded contract its provider signed, ready for the DAO's signature."""

    id: str
    provider: str
    quantity: int


@dataclass(frozen=True)
class Lost:
    """A provider's running hosting contracts that do not serve: ``accounts`` they
    hold, and ``why`` (its PDS does not answer, it is leaving)."""

    provider: str
    accounts: int
    why: str


@dataclass(frozen=True)
class LiveCapacityObserved:
    now_ms: int
    load: int
    waiting: int
    usable: int
    awarded: int
    growth_per_s: float
    region: str
    epoch_s: int
    open_rfbs: tuple[OpenRfb, ...] = ()
    to_approve: tuple[ToApprove, ...] = ()
    lost_by: tuple[Lost, ...] = ()

    @property
    def lost(self) -> int:
        """Accounts of capacity lost with dead or leaving providers."""
        return sum(x.accounts for x in self.lost_by)

    @property
    def requested(self) -> int:
        return sum(r.quantity for r in self.open_rfbs if r.bids or self.now_ms < r.deadline_ms)


def observe(
    state: MarketData,
    *,
    usable_provider: Mapping[str, bool],
    why_lost: Mapping[str, str] | None = None,
    hosted: int,
    waiting: int,
    growth_per_s: float,
    now_ms: int,
    region: str,
) -> LiveCapacityObserved:
    """The capacity picture from the market's state and the network's reachability.
    ``usable_provider[did]``: its PDS answers and it is not leaving; ``why_lost[did]``
    says in words why a provider's capacity does not serve."""
    usable = awarded = 0
    lost: dict[str, int] = {}
    approve = []
    for c in state.contracts.values():
        if c.service != HOSTING or not c.firm:
            continue
        if c.status == "active":
            if usable_provider.get(c.provider, False):
                usable += c.held
            else:
                lost[c.provider] = lost.get(c.provider, 0) + c.held
            continue
        awarded += c.held
        ready = c.verdict == "allow" or (
            c.verdict == "optimistic" and now_ms >= c.awarded_ms + c.window_s * 1000
        )
        if c.provider_signed and not c.approval and ready:
            approve.append(ToApprove(c.id, c.provider, c.held))
    params = state.params
    rfbs = []
    for r in state.rfbs.values():
        if r.service != HOSTING or r.awarded:
            continue
        bids = sorted(
            (state.bids[b] for b in r.bids), key=lambda b: (r.bundle_price(b.prices), b.id)
        )
        epochs = max(1, -(-(r.min_term_s or r.term_s) // params.epoch_s))
        left, commit = r.quantity, 0
        for b in bids:
            take = min(left, b.quantity)
            commit += take * r.bundle_price(b.prices) * epochs // PRICE_SCALE
            left -= take
        rfbs.append(
            OpenRfb(
                r.id, r.quantity, r.deadline_ms, len(bids), r.max_bids,
                sum(b.quantity for b in bids), commit,
            )
        )  # fmt: skip
    return LiveCapacityObserved(
        now_ms=now_ms,
        load=hosted + waiting,
        waiting=waiting,
        usable=usable,
        awarded=awarded,
        growth_per_s=growth_per_s,
        region=region,
        epoch_s=params.epoch_s,
        open_rfbs=tuple(sorted(rfbs, key=lambda r: r.id)),
        to_approve=tuple(sorted(approve, key=lambda a: a.id)),
        lost_by=tuple(
            Lost(d, n, (why_lost or {}).get(d, "dead or leaving")) for d, n in sorted(lost.items())
        ),
    )


def decide(
    obs: LiveCapacityObserved, desired: LiveCapacityDesired, limits: MandateLimits
) -> list[Action]:
    """The capacity actions now (see the module docstring). Pure."""
    money = limits.currency
    inputs = {
        "now_ms": obs.now_ms, "load": obs.load, "usable": obs.usable,
        "lost": [(x.provider, x.accounts) for x in obs.lost_by], "awarded": obs.awarded,
        "growth": obs.growth_per_s, "floor": desired.floor_accounts,
        "rfbs": [(r.id, r.quantity, r.bids, r.offered) for r in obs.open_rfbs],
    }  # fmt: skip
    out: list[Action] = []
    for a in obs.to_approve:
        out.append(
            Action.make(
                "contract.award",
                Reason.of(
                    "capacity.approve-signed",
                    f"{a.provider} signed {a.id} ({a.quantity} hosting accounts); "
                    "sign it for the DAO so the capacity serves",
                    inputs,
                    accounts=a.quantity,
                ),
                phase="approve",
                contract=a.id,
                units=a.quantity,
            )
        )
    for r in obs.open_rfbs:
        full = r.bids >= r.max_bids
        if not (full or obs.now_ms >= r.deadline_ms):
            continue
        why = (
            f"it holds its maximum of {r.max_bids} bids, for {r.offered} of {r.quantity} accounts"
            if full
            else f"bidding closed with {r.bids} bid(s) for {r.offered} of {r.quantity} accounts"
        )
        out.append(
            Action.make(
                "contract.award",
                Reason.of(
                    "capacity.award",
                    f"{r.id}: {why}; award it to the best bids under the mandate",
                    inputs,
                    offered=r.offered,
                    quantity=r.quantity,
                ),
                phase="award",
                rfb=r.id,
                units=min(r.offered, r.quantity),
                cost=money.to_units(r.commit),
            )
        )
    coming = obs.awarded + obs.requested
    forecast = obs.load + obs.growth_per_s * desired.horizon_s
    have = obs.usable + coming
    floor = desired.floor_accounts
    busy = forecast > 0 and forecast > desired.threshold * have
    short = have < floor
    if not (busy or short):
        return out
    target = max(floor, math.ceil(forecast / desired.headroom) if busy else 0)
    want = max(desired.min_accounts, target - have)
    epochs = max(1, -(-desired.min_term_s // max(1, obs.epoch_s)))
    cost = want * desired.max_account_price * epochs // PRICE_SCALE
    losses = ", ".join(f"{x.provider} ({x.accounts} accounts, {x.why})" for x in obs.lost_by)
    state = (
        f"{obs.usable} usable + {coming} coming for a load of {obs.load} accounts "
        f"({obs.waiting} waiting), forecast {forecast:.0f} in {desired.horizon_s}s"
    )
    aim = f" to bring utilisation to {desired.headroom:.0%}" if busy else ""
    if short:
        rule = "capacity.replace-lost" if obs.lost_by else "capacity.floor"
        lead = f"replace the capacity lost with {losses}: " if obs.lost_by else ""
        text = (
            f"{lead}{state} is under the {floor} accounts of hosting the plan keeps; "
            f"ask the market for {want} accounts{aim}"
        )
    else:
        rule = "capacity.utilisation"
        lost = f" ({obs.lost} accounts lost with {losses})" if obs.lost_by else ""
        text = (
            f"{state}{lost}: utilisation {forecast / have if have else math.inf:.0%} is over "
            f"the plan's {desired.threshold:.0%}; ask the market for {want} accounts{aim}"
        )
    out.append(
        Action.make(
            "capacity.procure",
            Reason.of(
                rule,
                text,
                inputs,
                load=obs.load,
                forecast=forecast,
                usable=obs.usable,
                coming=coming,
                lost=obs.lost,
                floor=floor,
                threshold=desired.threshold,
            ),
            intent="hosting",
            replaces=[x.provider for x in obs.lost_by] if short else [],
            service=HOSTING,
            units=want,
            region=desired.region or obs.region,
            term_s=desired.term_s,
            min_term_s=desired.min_term_s,
            bid_window_s=desired.bid_window_s,
            max_account_price=desired.max_account_price,
            cost=money.to_units(cost),
        )
    )
    return out


class CapacityExecutor:
    """Carries out the capacity actions on the market: a request for bids, an award,
    the DAO's signature on a signed contract."""

    kinds = frozenset({"capacity.procure", "contract.award"})

    def __init__(self, market: Market, clock: Callable[[], int]) -> None:
        self.market = market
        self.clock = clock

    def execute(self, action: Action) -> Done:
        now = self.clock()
        m = self.market
        if action.kind == "capacity.procure":
            deadline = now + int(action["bid_window_s"]) * 1000
            spec = {
                "service": str(action["service"]),
                "quantity": int(action["units"]),
                "region": str(action["region"]),
                "start_ms": deadline,
                "term_s": int(action["term_s"]),
                "min_term_s": int(action["min_term_s"]),
                "max_prices": {"account": int(action["max_account_price"])},
                "deadline_ms": deadline,
            }
            rfb = m.create_rfb(spec, now)
            return Done(
                f"{rfb.id}: {rfb.quantity} hosting accounts in {rfb.region}, bids until "
                f"{deadline} ms",
                {"rfb": rfb.id},
            )
        if action["phase"] == "approve":
            c = m.approve_contract(str(action["contract"]), now)
            return Done(f"{c.id} signed for the DAO: {c.status}", {"contract": c.id})
        _, contracts = m.award(str(action["rfb"]), now)
        got = ", ".join(f"{c.id} {c.provider}:{c.quantity} ({c.verdict})" for c in contracts)
        return Done(
            f"{action['rfb']} awarded: {got or 'no bid could be awarded'}",
            {"contracts": [c.id for c in contracts]},
        )
