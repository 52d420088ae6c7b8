"""Award: rank the bids of a request by a documented score and allocate its accounts
within the mandate.

The score of a bid is a weighted sum of four components, each an integer in parts per
million so that every replay computes the same number (the weights are market
parameters; defaults 40/30/15/15):

* **price** ``= cheapest bundle / this bundle``, where a bundle is the price of serving
  one account for one epoch under the request's usage profile (reverse auction: the
  cheapest valid bid scores 1);
* **reliability** ``= r^7`` with ``r`` the provider's success rate over its settled probe
  history, smoothed by a prior of ``prior_windows`` windows at ``prior_up_ppm`` so a
  newcomer starts near but below a proven provider (the seventh power is The Graph
  gateway's ``success_rate^7``: a 99% provider keeps 93%, a 90% one 48%);
* **latency** ``= half / (half + p95)``, with ``p95`` the provider's measured latency in
  its last settled epoch, or the bid's promise when it has none (1/2 at
  ``latency_half_ms``);
* **bond** ``= bond / (bond + bond_half)``, saturating like The Graph's stake factor.

Bids are taken in order of score (then cheaper bundle, then DID: the order is total
and the award deterministic). Each gets what it offered, up to what is still needed,
if the mandate guard (:func:`plaza.dao.check`) allows a ``contract.award`` of that many
accounts to that provider given the accounts already contracted for the service; if
the guard denies for concentration (share over ``max_provider_share_ppm`` or HHI over
``hhi_ceiling``) the bid gets the largest quantity the guard allows, found by
bisection, possibly none. The guard's verdict (allow, optimistic with its window, vote)
is stored with each line and decides who may sign the contract
(:mod:`plaza.market.contracts`). Expired bids and providers no longer eligible get
nothing. The breakdown of every line is the award's recorded reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from plaza.dao import Action, Allow, Deny, GuardState, Mandate, NeedsVote, Optimistic, Spend, check
from plaza.dao.mandate import hhi
from plaza.ledger.clock import iso_ms
from plaza.market.params import PPM, PRICE_SCALE, MarketParams
from plaza.market.registry import BIDDABLE

if TYPE_CHECKING:
    from plaza.market.bids import Bid
    from plaza.market.data import MarketData
    from plaza.market.rfb import Rfb

CONCENTRATION_CODES = frozenset({"OverConcentration", "OverHHI"})


@dataclass(frozen=True, slots=True)
class Score:
    """The score of one bid and how it was made."""

    bid: str
    provider: str
    bundle: int
    price_ppm: int
    reliability_ppm: int
    latency_ppm: int
    bond_ppm: int
    score_ppm: int
    up_windows: int
    judged_windows: int
    latency_ms: int


@dataclass(frozen=True, slots=True)
class AwardLine:
    """What one bid got, and why."""

    score: Score
    wanted: int
    allocated: int
    verdict: str  # "allow" | "optimistic" | "vote" | "deny" | "skip"
    window_s: int
    proposal_type: str
    reason: str

    def to_map(self) -> dict[str, Any]:
        s = self.score
        return {
            "bid": s.bid,
            "provider": s.provider,
            "bundle": s.bundle,
            "price_ppm": s.price_ppm,
            "reliability_ppm": s.reliability_ppm,
            "latency_ppm": s.latency_ppm,
            "bond_ppm": s.bond_ppm,
            "score_ppm": s.score_ppm,
            "up_windows": s.up_windows,
            "judged_windows": s.judged_windows,
            "latency_ms": s.latency_ms,
            "wanted": self.wanted,
            "allocated": self.allocated,
            "verdict": self.verdict,
            "window_s": self.window_s,
            "proposal_type": self.proposal_type,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class AwardPlan:
    """The outcome of an award, before it is recorded."""

    rfb: str
    mandate_digest: str
    lines: tuple[AwardLine, ...]

    def to_payload(self) -> dict[str, Any]:
        return {
            "rfb": self.rfb,
            "mandate": self.mandate_digest,
            "lines": [ln.to_map() for ln in self.lines],
        }


def _pow7(r_ppm: int) -> int:
    out = PPM
    for _ in range(7):
        out = out * r_ppm // PPM
    return out


def score_bid(
    bid: Bid, rfb: Rfb, cheapest: int, params: MarketParams, history: tuple[int, int, int | None]
) -> Score:
    """Score one bid (see the module docstring). ``history`` is ``(up, judged,
    last_p95_ms)`` from the provider's settled probe record."""
    bundle = rfb.bundle_price(bid.prices)
    price = PPM if bundle <= 0 else cheapest * PPM // bundle
    up, judged, p95 = history
    prior_up = params.prior_windows * params.prior_up_ppm // PPM
    denom = judged + params.prior_windows
    r = (up + prior_up) * PPM // denom if denom else PPM
    reliability = _pow7(r)
    latency_ms = p95 if p95 is not None else bid.sla.latency_p95_ms
    latency = PPM * params.latency_half_ms // (params.latency_half_ms + latency_ms)
    bond = bid.bond * PPM // (bid.bond + params.bond_half) if bid.bond + params.bond_half else 0
    total = (
        params.w_price * price
        + params.w_reliability * reliability
        + params.w_latency * latency
        + params.w_bond * bond
    ) // PPM
    return Score(
        bid.id, bid.provider, bundle, price, reliability, latency, bond, total, up, judged,
        latency_ms,
    )  # fmt: skip


def _guard_state(
    state: MarketData, mandate: Mandate, now_ms: int, accounts: Mapping[str, int]
) -> GuardState:
    # The guard sums spends in the budget's rolling window; summing once here and
    # handing it one aggregate keeps an award of n bids O(n) in commitments, not O(n^2).
    budget = mandate.budgets.get("infrastructure")
    spends: list[Spend] = []
    if budget is not None:
        start = now_ms - budget.period * 1000
        total = sum(a for t, a in state.commitments if start < t <= now_ms)
        spends = [Spend(now_ms, total)] if total else []
    return GuardState(
        mandate=mandate, now_ms=now_ms, spends={"infrastructure": spends}, accounts=dict(accounts)
    )


def term_cost(rfb: Rfb, bundle: int, accounts: int, params: MarketParams) -> int:
    """What ``accounts`` at ``bundle`` commit the DAO to, in minor units: the request's
    term (its minimum term when it has one) at the bundle price; nothing for a standing
    offer, which is paid by metered use only."""
    if rfb.standing:
        return 0
    epochs = max(1, -(-(rfb.min_term_s or rfb.term_s) // params.epoch_s))
    return accounts * bundle * epochs // PRICE_SCALE


def plan_award(state: MarketData, rfb_id: str, mandate: Mandate, now_ms: int) -> AwardPlan:
    """Score and allocate the bids of ``rfb_id`` at ``now_ms`` (pure: reads ``state``).

    Allocation runs in two steps. First a greedy pass in score order gives each bid
    what it offered, capped so that no provider would exceed the mandate's maximum
    share of the accounts the service will have once the request is filled (if the
    request cannot be filled, the pass is repeated against the smaller total until it
    is stable). If the resulting market would pass the mandate's HHI ceiling (and raise
    the HHI), the share cap is lowered by bisection to the largest that keeps it under.
    Then every line is put to the guard against that final distribution,
    all other lines applied; a line the guard denies for concentration is cut by
    bisection to the largest quantity it allows, and the check repeats until every line
    passes. The guard therefore judges each contract against the market as it will be,
    not as it was before the award.
    """
    rfb = state.rfbs[rfb_id]
    params = state.params
    bids = [state.bids[b] for b in rfb.bids]
    live = [b for b in bids if b.expires_ms > now_ms]
    cheapest = min((rfb.bundle_price(b.prices) for b in live), default=0)
    scored = sorted(
        (score_bid(b, rfb, cheapest, params, state.history_of(b.provider)) for b in bids),
        key=lambda s: (-s.score_ppm, s.bundle, s.provider),
    )
    existing = dict(state.accounts_by_provider(rfb.service))
    limits = mandate.limits
    eligible: list[Score] = []
    skipped: dict[str, str] = {}
    for s in scored:
        bid = state.bids[s.bid]
        status = state.providers[bid.provider].status
        if bid.expires_ms <= now_ms:
            skipped[s.bid] = f"bid expired at {iso_ms(bid.expires_ms)}"
        elif status not in BIDDABLE:
            skipped[s.bid] = f"provider is {status}"
        else:
            eligible.append(s)

    def fill(share_ppm: int) -> dict[str, int]:
        target = sum(existing.values()) + rfb.quantity
        alloc: dict[str, int] = {}
        for _ in range(len(eligible) + 2):
            alloc = _greedy(
                state,
                rfb=rfb,
                eligible=eligible,
                existing=existing,
                target=target,
                share_ppm=share_ppm,
                floor=limits.concentration_min_accounts,
            )
            filled = sum(existing.values()) + sum(alloc.values())
            if filled == target:
                break
            target = filled
        return alloc

    def over_hhi(alloc: Mapping[str, int]) -> bool:
        after = dict(existing)
        for t in eligible:
            if alloc.get(t.bid):
                after[t.provider] = after.get(t.provider, 0) + alloc[t.bid]
        if sum(after.values()) < limits.concentration_min_accounts:
            return False
        h = hhi(after)
        return h > limits.hhi_ceiling and h > hhi(existing)

    alloc = fill(limits.max_provider_share_ppm)
    if over_hhi(alloc):
        # The market as a whole would pass the HHI ceiling: lower the share cap, by
        # bisection, to the largest one whose allocation stays under it.
        lo, hi, best = 0, limits.max_provider_share_ppm - 1, {}
        while lo <= hi:
            mid = (lo + hi) // 2
            trial = fill(mid)
            if over_hhi(trial):
                hi = mid - 1
            else:
                lo, best = mid + 1, trial
        alloc = best

    verdicts: dict[str, Allow | Optimistic | NeedsVote | Deny] = {}
    for _ in range(4 * len(eligible) + 4):
        changed = False
        for s in eligible:
            q = alloc.get(s.bid, 0)
            if q == 0:
                continue
            others = dict(existing)
            for t in eligible:
                if t.bid != s.bid and alloc.get(t.bid, 0):
                    others[t.provider] = others.get(t.provider, 0) + alloc[t.bid]
            gs = _guard_state(state, mandate, now_ms, others)
            q2, verdict = _largest_allowed(gs, rfb, s, q, params)
            verdicts[s.bid] = verdict
            if q2 != q:
                alloc[s.bid] = q2
                changed = True
        if not changed:
            break
    else:
        # Cuts kept chasing each other (too few providers for the share limit): award
        # nothing rather than something the guard has not passed.
        alloc = {}
        verdicts = {}

    lines: list[AwardLine] = []
    for s in scored:
        bid = state.bids[s.bid]
        if s.bid in skipped:
            lines.append(AwardLine(s, bid.quantity, 0, "skip", 0, "", skipped[s.bid]))
            continue
        q = alloc.get(s.bid, 0)
        wanted = bid.quantity
        v = verdicts.get(s.bid)
        if q == 0:
            if isinstance(v, Deny):
                why = f"{v.code}: {v.reason}"
            else:
                why = "the request was filled by better-scoring bids, or the mandate's "
                why += f"share limit of {limits.max_provider_share_ppm} ppm left no room"
            lines.append(
                AwardLine(s, wanted, 0, "deny" if isinstance(v, Deny) else "skip", 0, "", why)
            )
            continue
        window, ptype = 0, ""
        if isinstance(v, Optimistic):
            window, name = v.window_s, "optimistic"
        elif isinstance(v, NeedsVote):
            ptype, name = v.proposal_type, "vote"
        else:
            name = "allow"
        why = f"score {s.score_ppm} ppm; {q} of {wanted} accounts offered"
        if q < wanted:
            why += " (cut to what was needed and the mandate's concentration limits allow)"
        lines.append(AwardLine(s, wanted, q, name, window, ptype, why))
    return AwardPlan(rfb_id, mandate.digest().hex(), tuple(lines))


def _greedy(
    state: MarketData,
    *,
    rfb: Rfb,
    eligible: list[Score],
    existing: Mapping[str, int],
    target: int,
    share_ppm: int,
    floor: int,
) -> dict[str, int]:
    """Fill the request in score order, each provider capped at ``share_ppm`` of
    ``target`` accounts (no cap while ``target`` is under the concentration ``floor``)."""
    remaining = rfb.quantity
    held = dict(existing)
    capped = target >= floor
    out: dict[str, int] = {}
    for s in eligible:
        want = min(state.bids[s.bid].quantity, remaining)
        if capped:
            cap = share_ppm * target // PPM - held.get(s.provider, 0)
            want = max(0, min(want, cap))
        if want:
            out[s.bid] = want
            held[s.provider] = held.get(s.provider, 0) + want
            remaining -= want
    return out


def _action(rfb: Rfb, s: Score, q: int, params: MarketParams) -> Action:
    return Action(
        kind="contract.award",
        params={"rfb": rfb.id, "bid": s.bid},
        amount=term_cost(rfb, s.bundle, q, params),
        category="infrastructure",
        provider=s.provider,
        accounts=q,
    )


def _largest_allowed(
    gs: GuardState, rfb: Rfb, s: Score, wanted: int, params: MarketParams
) -> tuple[int, Allow | Optimistic | NeedsVote | Deny]:
    verdict = check(_action(rfb, s, wanted, params), gs)
    if not isinstance(verdict, Deny):
        return wanted, verdict
    if verdict.code not in CONCENTRATION_CODES:
        return 0, verdict
    # Concentration only grows with the quantity, so the allowed quantities are a prefix
    # 1..k; bisect for k.
    lo, hi, best = 1, wanted - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        v = check(_action(rfb, s, mid, params), gs)
        if isinstance(v, Deny):
            hi = mid - 1
        else:
            lo, best = mid + 1, (mid, v)
    if best is None:
        return 0, verdict
    return best
