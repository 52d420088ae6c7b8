"""Every signed document names the market it is for (``market``: its operator's DID).
Request, contract and invoice ids are numbered per market, so two markets with the same
providers hold the same ``rfb-1``, ``c-1`` and ``inv-c-1-0``: a document signed for one
is refused by the other (``WrongMarket``) and changes nothing, while the same document
addressed to it is accepted."""

from __future__ import annotations

from functools import partial

from plaza.ledger import MemoryEventStore
from plaza.market import WrongMarketError
from tests.market.conftest import GENESIS, HOUR, World, make_world
from tests.market.test_end_to_end import RFB, all_up, build
from tests.market.test_lifecycle import dispute_doc
from tests.market.test_rejections import AFTER_E0, T_BID, contracted, unchanged


def twins() -> tuple[World, World]:
    """Our market and theirs (another operator), with the same providers and keys."""
    return make_world(MemoryEventStore()), make_world(MemoryEventStore(), operator=201)


def test_a_bid_for_another_market_is_refused() -> None:
    ours, theirs = twins()
    for w in (ours, theirs):
        build(w)
        w.market.create_rfb(RFB, GENESIS - 3 * HOUR)
    doc = theirs.bid("a", "rfb-1", account=4_000_000)
    theirs.market.submit_bid(doc, T_BID)
    err = unchanged(ours, WrongMarketError, lambda: ours.market.submit_bid(doc, T_BID))
    assert (err.code, err.status) == ("WrongMarket", 403)
    assert theirs.market.operator_did in err.message
    ours.market.submit_bid(ours.bid("a", "rfb-1", account=4_000_000), T_BID)


def test_contract_terms_for_another_market_are_refused() -> None:
    ours, theirs = twins()
    for w in (ours, theirs):
        build(w)
        w.market.create_rfb(RFB, GENESIS - 3 * HOUR)
        for name, price in (("a", 4_000_000), ("b", 5_000_000), ("c", 6_000_000)):
            w.market.submit_bid(w.bid(name, "rfb-1", account=price, bond=20_000), T_BID)
        w.market.award("rfb-1", GENESIS - 2 * HOUR)
    assert len(ours.market.state.contracts) == 3
    for cid, ct in ours.market.state.contracts.items():
        # The terms name the bid, whose id is the digest of a document naming its market:
        # the same contract id has other terms in the other market.
        assert theirs.market.state.contracts[cid].terms_digest() != ct.terms_digest()
        name = next(n for n, p in ours.parties.items() if p.did == ct.provider)
        # And terms signed with this contract's digest but for the other market are refused.
        elsewhere = terms(theirs, name, cid, ct.terms_digest())
        unchanged(ours, WrongMarketError, partial(ours.market.sign_contract, elsewhere, GENESIS))
        signed = ours.market.sign_contract(terms(ours, name, cid, ct.terms_digest()), GENESIS)
        assert signed.provider_signed


def terms(w: World, name: str, cid: str, digest: str) -> dict[str, object]:
    """``name``'s signature of contract ``cid``'s terms, for ``w``'s market."""
    party = w.party(name)
    return party.sign(
        {"$type": "terms", "provider": party.did, "market": w.market.operator_did,
         "contract": cid, "terms_digest": digest, "nonce": f"t-{cid}"}
    )  # fmt: skip


def test_usage_observations_probes_and_disputes_for_another_market_are_refused() -> None:
    ours, theirs = twins()
    ids = contracted(ours)
    assert contracted(theirs) == ids
    usage = {"account": 100}
    m = ours.market
    for builder, report in (
        (lambda w: w.usage("a", ids["a"], 0, usage), m.report_usage),
        (lambda w: w.usage("p1", ids["a"], 0, usage, observer=True), m.report_observation),
        (lambda w: w.probes("p1", 0, {"a": all_up(100)}), m.report_probes),
    ):
        unchanged(ours, WrongMarketError, partial(report, builder(theirs), AFTER_E0))
        report(builder(ours), AFTER_E0)
    m.fund_escrow(100_000, GENESIS)
    m.settle(0, AFTER_E0 + 1)
    inv = f"inv-{ids['b']}-0"
    elsewhere = dispute_doc(theirs, inv, 500)
    unchanged(ours, WrongMarketError, lambda: m.open_dispute(elsewhere, AFTER_E0 + 2))
    assert m.open_dispute(dispute_doc(ours, inv, 500), AFTER_E0 + 2).status == "open"
