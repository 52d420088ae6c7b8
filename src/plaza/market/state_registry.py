"""Opening, the registry and procurement: the handlers of ``market.opened``, provider
registration and status, requests for bids, bids and awards. Each handler checks its
event against :class:`~plaza.market.data.MarketData` and returns the mutation that
applies it; see :mod:`plaza.market.state` for the table and the theory of operation."""

from __future__ import annotations

from dataclasses import replace

from plaza.ledger.clock import iso_ms
from plaza.ledger.event import Event
from plaza.ledger.handlers import Mutation
from plaza.market import payloads as pl
from plaza.market.award import term_cost
from plaza.market.bidding import validate_bid
from plaza.market.contracts import Contract
from plaza.market.data import MarketData
from plaza.market.errors import (
    BondTooSmallError,
    ClosedError,
    MarketInputError,
    NotFoundInMarketError,
    NotIndependentError,
    NotOperatorError,
    ProviderNotEligibleError,
    ReplayError,
    UnknownProviderError,
)
from plaza.market.params import MarketParams
from plaza.market.registry import (
    BIDDABLE,
    Provider,
    StatusChange,
    check_identity,
    check_transition,
    parse_registration,
)
from plaza.market.rfb import parse_rfb
from plaza.market.signed import verify_doc


def opened(state: MarketData, ev: Event, p: pl.Opened) -> Mutation:
    if state.is_open:
        raise ClosedError("the market is already open")
    if p.operator != ev.author_did:
        raise NotOperatorError("market.opened must be written by the operator it names")
    params = MarketParams.from_map(p.params)
    return lambda: state.open_market(p.operator, params, p.currency)


def registered(state: MarketData, ev: Event, p: pl.Doc) -> Mutation:
    doc = p.doc
    reg = parse_registration(doc)
    verify_doc(doc, reg.key, "registration", market=state.operator)
    check_identity(reg, ev.time)
    state.check_fresh(reg.did, "registration", reg.nonce, doc)
    if reg.did in state.providers:
        raise ReplayError(f"provider {reg.did} is already registered")
    if reg.did == state.operator:
        raise NotIndependentError("the operator cannot register as a provider")
    provider = Provider(
        did=reg.did,
        key=reg.key,
        services=reg.services,
        regions=reg.regions,
        capacity=reg.capacity,
        prices=reg.prices,
        bond=0,  # declared only: it counts once received (market.bond.received)
        bond_declared=reg.bond,
        endpoint=reg.endpoint,
        registered_ms=ev.time,
        history=(StatusChange(ev.time, "", "probation", "registered"),),
    )

    def commit() -> None:
        state.providers[reg.did] = provider
        state.remember(reg.did, "registration", reg.nonce, doc)

    return commit


def status(state: MarketData, ev: Event, p: pl.ProviderStatus) -> Mutation:
    prov = state.providers.get(p.provider)
    if prov is None:
        raise UnknownProviderError(f"no provider {p.provider}")
    check_transition(prov, p.status)
    reinstated = (prov.status, p.status) == ("suspended", "active")

    def commit() -> None:
        now = state.providers[p.provider]
        change = StatusChange(ev.time, prov.status, p.status, p.reason)
        state.providers[p.provider] = replace(
            now,
            status=p.status,
            history=(*now.history, change),
            # Reinstatement starts a new streak; leaving probation keeps the count of
            # consecutive failed epochs the settlements made.
            failed_streak=0 if reinstated else now.failed_streak,
        )

    return commit


def rfb_created(state: MarketData, ev: Event, p: pl.RfbCreated) -> Mutation:
    rfb = parse_rfb(ev.payload, default_max_bids=state.params.max_bids)
    want = state.next_id("rfb", state.rfbs)
    if rfb.id != want:
        raise MarketInputError(f"the next request for bids is {want}, not {rfb.id}")
    if rfb.deadline_ms <= ev.time:
        raise ClosedError("the bid deadline must be in the future")
    rfb = replace(rfb, created_ms=ev.time)

    def commit() -> None:
        state.rfbs[rfb.id] = rfb

    return commit


def bid_submitted(state: MarketData, ev: Event, p: pl.Doc) -> Mutation:
    doc = p.doc
    bid = validate_bid(state, doc, ev.time)
    free = state.free_bond(bid.provider)
    if bid.bond > free:
        prov = state.providers[bid.provider]
        unpaid = prov.bond_declared - prov.bond_received
        raise BondTooSmallError(
            f"the bid pledges a bond of {bid.bond}, but only {free} of the provider's "
            "escrowed bond is free"
            + (f" ({unpaid} of the declared bond has no receipt yet)" if unpaid else "")
        )

    def commit() -> None:
        state.bids[bid.id] = bid
        state.open_bids_of.setdefault(bid.provider, {})[bid.id] = None
        rfb = state.rfbs[bid.rfb]
        state.rfbs[bid.rfb] = replace(rfb, bids=(*rfb.bids, bid.id))
        state.remember(bid.provider, "bid", bid.nonce, doc)

    return commit


def award_made(state: MarketData, ev: Event, p: pl.AwardMade) -> Mutation:
    rfb = state.rfbs.get(p.rfb)
    if rfb is None:
        raise NotFoundInMarketError(f"no request for bids {p.rfb}")
    if rfb.awarded:
        raise ClosedError(f"{p.rfb} is already awarded")
    if ev.time < rfb.deadline_ms and len(rfb.bids) < rfb.max_bids:
        raise ClosedError(f"{p.rfb} takes bids until {iso_ms(rfb.deadline_ms)}")
    total = 0
    contracts: list[Contract] = []
    seen: set[str] = set()
    n = len(state.contracts)
    for line in p.lines:
        bid = state.bids.get(line.bid)
        if bid is None or bid.rfb != p.rfb or line.bid in seen:
            raise MarketInputError(f"award line names {line.bid}, not a bid of {p.rfb}")
        seen.add(line.bid)
        if line.allocated > bid.quantity:
            raise MarketInputError(
                f"award line {line.bid} allocates {line.allocated} of {bid.quantity} offered"
            )
        if line.allocated == 0:
            continue
        if line.verdict not in ("allow", "optimistic", "vote"):
            raise MarketInputError("only allowed lines may allocate accounts")
        if bid.expires_ms <= ev.time:
            raise ClosedError(f"{line.bid} expired before the award")
        if state.providers[bid.provider].status not in BIDDABLE:
            raise ProviderNotEligibleError(f"{bid.provider} may not be awarded")
        total += line.allocated
        n += 1
        contracts.append(
            Contract(
                id=f"c-{n}",
                rfb=p.rfb,
                bid=line.bid,
                provider=bid.provider,
                service=rfb.service,
                region=rfb.region,
                quantity=line.allocated,
                prices=bid.prices,
                sla=bid.sla,
                credit_ladder=rfb.credit_ladder,
                latency_credit_ppm=rfb.latency_credit_ppm,
                start_ms=rfb.start_ms,
                end_ms=rfb.start_ms + rfb.term_s * 1000,
                notice_s=rfb.notice_s,
                exit_fee=rfb.exit_fee,
                bond=bid.bond,
                awarded_ms=ev.time,
                verdict=line.verdict,
                window_s=line.window_s,
                proposal_type=line.proposal_type,
                min_term_s=rfb.min_term_s,
                standing=rfb.standing,
            )
        )
    if set(rfb.bids) != seen:
        raise MarketInputError("an award must account for every bid of the request")
    if total > rfb.quantity:
        raise MarketInputError(f"the award allocates {total} of {rfb.quantity} accounts")
    costs = [
        (ev.time, term_cost(rfb, rfb.bundle_price(c.prices), c.quantity, state.params))
        for c in contracts
    ]

    def commit() -> None:
        state.rfbs[p.rfb] = replace(rfb, awarded=True)
        for b in rfb.bids:
            state.open_bids_of.get(state.bids[b].provider, {}).pop(b, None)
        for c in contracts:
            state.contracts[c.id] = c
            state.running_of.setdefault(c.provider, {})[c.id] = None
        state.commitments.extend(costs)
        state.awards[p.rfb] = dict(ev.payload)

    return commit
