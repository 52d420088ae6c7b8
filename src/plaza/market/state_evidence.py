"""Contract signatures and evidence: the handlers for terms, approvals, ends and
releases, usage, observations and probe samples. See :mod:`plaza.market.state` for the
table and the theory of operation."""

from __future__ import annotations

from typing import Any

from plaza.ledger.clock import iso_ms
from plaza.ledger.event import Event
from plaza.ledger.handlers import Mutation
from plaza.market import payloads as pl
from plaza.market.contracts import Contract
from plaza.market.data import MarketData
from plaza.market.errors import (
    BadSignatureError,
    ClosedError,
    MarketInputError,
    NotApprovedError,
    NotFoundInMarketError,
    NotIndependentError,
    ProviderNotEligibleError,
    ReplayError,
    UnknownProviderError,
)
from plaza.market.fields import MarketId, Model, parse
from plaza.market.metering import parse_usage
from plaza.market.probes import parse_probe_report
from plaza.market.registry import BIDDABLE
from plaza.market.signed import check_doc, verify_doc


class _Terms(Model):
    """The contract a ``terms`` document signs for."""

    contract: MarketId


def _contract(state: MarketData, cid: str) -> Contract:
    c = state.contracts.get(cid)
    if c is None:
        raise NotFoundInMarketError(f"no contract {cid}")
    return c


def signed(state: MarketData, ev: Event, p: pl.Doc) -> Mutation:
    doc = p.doc
    signer, nonce = check_doc(doc, "terms")
    c = _contract(state, parse(_Terms, doc, "terms").contract)
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


def approved(state: MarketData, ev: Event, p: pl.ContractApproved) -> Mutation:
    c = _contract(state, p.contract)
    if c.status != "awarded" or c.approval:
        raise ClosedError(f"{c.id} is already approved")
    if p.by == "mandate":
        if c.verdict == "vote":
            raise NotApprovedError(f"{c.id} needs a passed {c.proposal_type} proposal")
        if c.verdict == "optimistic" and ev.time < c.awarded_ms + c.window_s * 1000:
            raise NotApprovedError(
                f"{c.id}'s veto window runs until {iso_ms(c.awarded_ms + c.window_s * 1000)}"
            )
        approval = "mandate"
    else:
        approval = f"proposal:{p.proposal}"

    def commit() -> None:
        done = state.contracts[c.id].with_(approval=approval)
        if done.provider_signed:
            done = done.with_(status="active")
        state.contracts[c.id] = done

    return commit


def _check_min_term(state: MarketData, c: Contract, time_ms: int, what: str) -> None:
    """The DAO may end or release a contract only once its minimum term has run; a
    provider's offboarding ends its contracts at any time."""
    if state.providers[c.provider].status == "offboarded":
        return
    if time_ms < c.releasable_at():
        raise ClosedError(
            f"{c.id} has a minimum term until {iso_ms(c.releasable_at())}; "
            f"it cannot be {what} at {iso_ms(time_ms)}"
        )


def ended(state: MarketData, ev: Event, p: pl.ContractEnded) -> Mutation:
    c = _contract(state, p.contract)
    if c.status == "ended":
        raise ClosedError(f"{c.id} has already ended")
    _check_min_term(state, c, ev.time, "ended")

    def commit() -> None:
        state.contracts[c.id] = c.with_(status="ended", ended_ms=ev.time, end_reason=p.reason)
        state.running_of.get(c.provider, {}).pop(c.id, None)

    return commit


def released(state: MarketData, ev: Event, p: pl.ContractReleased) -> Mutation:
    """Part of a contract's accounts given back (the rest keeps running)."""
    c = _contract(state, p.contract)
    quantity = p.quantity
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


def usage(state: MarketData, ev: Event, p: pl.Doc) -> Mutation:
    return _report(state, ev, p.doc, "usage")


def observation(state: MarketData, ev: Event, p: pl.Doc) -> Mutation:
    return _report(state, ev, p.doc, "observation")


def _report(state: MarketData, ev: Event, doc: Any, doc_type: str) -> Mutation:
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


def probes(state: MarketData, ev: Event, p: pl.Doc) -> Mutation:
    doc = p.doc
    report = parse_probe_report(doc)
    prober = state.providers.get(report.prober)
    if prober is None or "prober" not in prober.services:
        raise UnknownProviderError(f"{report.prober} is not a registered prober")
    verify_doc(doc, prober.key, "probe", market=state.operator)
    state.check_fresh(report.prober, "probe", report.nonce, doc)
    if prober.status not in BIDDABLE:
        raise ProviderNotEligibleError(f"prober {report.prober} is {prober.status}")
    state.probes.check(
        report,
        registered=state.providers,
        open_window=state.params.window_of(ev.time),
        settled=state.settled_epochs,
    )

    def commit() -> None:
        state.remember(report.prober, "probe", report.nonce, doc)
        state.probes.apply(report)

    return commit
