"""Contract signatures and evidence: the projection's handlers for terms, usage,
observations and probe samples. See :mod:`plaza.market.state` for the theory of
operation."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from plaza.ledger.event import Event
from plaza.market import _fields as f
from plaza.market.contracts import Contract
from plaza.market.errors import (
    BadSignatureError,
    ClosedError,
    MarketInputError,
    NotApprovedError,
    NotFoundInMarketError,
    NotIndependentError,
    ReplayError,
    UnknownProviderError,
)
from plaza.market.metering import parse_usage
from plaza.market.probes import parse_probe_report
from plaza.market.signed import check_doc, verify_doc

if TYPE_CHECKING:
    from plaza.market.state import Commit, MarketState


def _contract(state: MarketState, payload: Mapping[str, Any], what: str) -> Contract:
    cid = f.id_field(payload, "contract", what)
    c = state.contracts.get(cid)
    if c is None:
        raise NotFoundInMarketError(f"no contract {cid}")
    return c


def _signed(state: MarketState, ev: Event) -> Commit:
    doc = f.req(ev.payload, "doc", "market.contract.signed")
    signer, nonce = check_doc(doc, "terms")
    c = _contract(state, doc, "terms")
    if signer != c.provider:
        raise BadSignatureError(f"{c.id} must be signed by its provider {c.provider}")
    verify_doc(doc, state.providers[signer].key, "terms", market=state.operator)
    state.check_fresh(signer, "terms", nonce, doc)
    if doc.get("terms_digest") != c.terms_digest():
        raise BadSignatureError(f"the signed terms do not match {c.id}'s terms")
    if c.status != "awarded" or c.provider_signed:
        raise ClosedError(f"{c.id} is {c.status} and already signed by its provider")

    def commit() -> None:
        state.remember(signer, "terms", nonce, doc)
        done = state.contracts[c.id].with_(provider_signed=True)
        if done.approval:
            done = done.with_(status="active")
        state.contracts[c.id] = done

    return commit


def _approved(state: MarketState, ev: Event) -> Commit:
    p = ev.payload
    c = _contract(state, p, "market.contract.approved")
    by = f.str_field(p, "by", "market.contract.approved", max_len=16)
    if c.status != "awarded" or c.approval:
        raise ClosedError(f"{c.id} is already approved")
    if by == "mandate":
        if c.verdict == "vote":
            raise NotApprovedError(f"{c.id} needs a passed {c.proposal_type} proposal")
        if c.verdict == "optimistic" and ev.time < c.awarded_ms + c.window_s * 1000:
            raise NotApprovedError(
                f"{c.id}'s veto window runs until {c.awarded_ms + c.window_s * 1000}"
            )
        approval = "mandate"
    elif by == "proposal":
        proposal = f.int_field(p, "proposal", "market.contract.approved", lo=0)
        approval = f"proposal:{proposal}"
    else:
        raise MarketInputError("approval is by 'mandate' or by 'proposal'")

    def commit() -> None:
        done = state.contracts[c.id].with_(approval=approval)
        if done.provider_signed:
            done = done.with_(status="active")
        state.contracts[c.id] = done

    return commit


def _check_min_term(state: MarketState, c: Contract, time_ms: int, what: str) -> None:
    """The DAO may end or release a contract only once its minimum term has run; a
    provider's offboarding ends its contracts at any time."""
    if state.providers[c.provider].status == "offboarded":
        return
    if time_ms < c.releasable_at():
        raise ClosedError(
            f"{c.id} has a minimum term until {c.releasable_at()}; it cannot be {what} at {time_ms}"
        )


def _ended(state: MarketState, ev: Event) -> Commit:
    p = ev.payload
    c = _contract(state, p, "market.contract.ended")
    reason = f.str_field(p, "reason", "market.contract.ended", max_len=1000)
    if c.status == "ended":
        raise ClosedError(f"{c.id} has already ended")
    _check_min_term(state, c, ev.time, "ended")

    def commit() -> None:
        state.contracts[c.id] = c.with_(status="ended", ended_ms=ev.time, end_reason=reason)
        state.running_of.get(c.provider, {}).pop(c.id, None)

    return commit


def _released(state: MarketState, ev: Event) -> Commit:
    """Part of a contract's accounts given back (the rest keeps running)."""
    p = ev.payload
    c = _contract(state, p, "market.contract.released")
    quantity = f.int_field(p, "quantity", "market.contract.released", lo=1)
    f.str_field(p, "reason", "market.contract.released", max_len=1000)  # kept in the event
    if c.status != "active" or c.standing:
        raise ClosedError(f"{c.id} is {c.status}{' and standing' if c.standing else ''}")
    if quantity >= c.held:
        raise MarketInputError(
            f"{c.id} holds {c.held} accounts; release fewer, or end the contract"
        )
    _check_min_term(state, c, ev.time, "released")

    def commit() -> None:
        state.contracts[c.id] = c.with_(released=c.released + quantity)

    return commit


def _usage(state: MarketState, ev: Event) -> Commit:
    return _report(state, ev, "usage")


def _observation(state: MarketState, ev: Event) -> Commit:
    return _report(state, ev, "observation")


def _report(state: MarketState, ev: Event, doc_type: str) -> Commit:
    doc = f.req(ev.payload, "doc", f"market.{doc_type}.reported")
    rep = parse_usage(doc, doc_type)
    c = state.contracts.get(rep.contract)
    if c is None:
        raise NotFoundInMarketError(f"no contract {rep.contract}")
    signer = state.providers.get(rep.signer)
    if signer is None:
        raise UnknownProviderError(f"{rep.signer} is not registered")
    verify_doc(doc, signer.key, doc_type, market=state.operator)
    state.check_fresh(rep.signer, doc_type, rep.nonce, doc)
    key = (c.id, rep.epoch)
    if doc_type == "usage":
        if rep.signer != c.provider:
            raise BadSignatureError(f"usage for {c.id} must come from {c.provider}")
        if key in state.usage:
            raise ReplayError(f"usage for {c.id} in epoch {rep.epoch} was already reported")
    else:
        if rep.signer == c.provider:
            raise NotIndependentError("a provider cannot observe its own contract")
        if "prober" not in signer.services:
            raise NotIndependentError(f"{rep.signer} is not a registered observer (prober)")
        if rep.signer in state.observations.get(key, {}):
            raise ReplayError(f"{rep.signer} already observed {c.id} in epoch {rep.epoch}")
    if rep.epoch in state.settled_epochs:
        raise ClosedError(f"epoch {rep.epoch} is already settled")
    if ev.time < state.params.epoch_end(rep.epoch):
        raise ClosedError(f"epoch {rep.epoch} is not over yet")
    lo, hi = c.span(state.params.epoch_start(rep.epoch), state.params.epoch_end(rep.epoch))
    if lo >= hi:
        raise ClosedError(f"{c.id} did not run in epoch {rep.epoch}")

    def commit() -> None:
        state.remember(rep.signer, doc_type, rep.nonce, doc)
        if doc_type == "usage":
            state.usage[key] = rep
        else:
            state.observations.setdefault(key, {})[rep.signer] = rep

    return commit


def _probes(state: MarketState, ev: Event) -> Commit:
    doc = f.req(ev.payload, "doc", "market.probes.reported")
    report = parse_probe_report(doc)
    state.probes.check(state, report, doc, ev.time)

    def commit() -> None:
        state.remember(report.prober, "probe", report.nonce, doc)
        state.probes.apply(report)

    return commit


def handlers(state: MarketState) -> dict[str, Callable[[Event], Commit]]:
    """The contract and evidence handlers, bound to ``state``."""
    table: dict[str, Callable[[MarketState, Event], Commit]] = {
        "market.contract.signed": _signed,
        "market.contract.approved": _approved,
        "market.contract.ended": _ended,
        "market.contract.released": _released,
        "market.usage.reported": _usage,
        "market.observation.reported": _observation,
        "market.probes.reported": _probes,
    }
    return {k: partial(fn, state) for k, fn in table.items()}
