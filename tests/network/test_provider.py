"""The provider daemon: its decisions on their own, then against a real `plaza serve
market` app on a socket and a real PDS — a usage report each epoch from the PDS's
getUsage, never twice, and nothing without the PDS's admin password."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any

import httpx

from plaza.market import MarketParams
from plaza.network.provider import ProviderDaemon, ProviderPolicy, View, decide
from tests.network.livenet import GENESIS, E, contract, live_net, register, signer

PARAMS = MarketParams(genesis_ms=0, epoch_s=600, window_s=60)
ME = {
    "did": "did:key:zme", "services": ["hosting"], "regions": ["eu"], "status": "active",
    "capacity": {"hosting": {"accounts": 50}}, "prices": {"hosting": {"account": 1_000_000}},
    "bond": 10_000,
}  # fmt: skip


def _contract(**kw: Any) -> dict[str, Any]:
    base = {
        "id": "c-1", "service": "hosting", "provider": ME["did"], "quantity": 20, "released": 0,
        "status": "active", "provider_signed": True, "approval": "mandate", "start_ms": 0,
        "end_ms": 10**9, "ended_ms": 0, "bond": 0, "terms_digest": "ab",
        "unit_prices": {"account": 1_000_000},
    }  # fmt: skip
    base.update(kw)
    return base


def _rfb(**kw: Any) -> dict[str, Any]:
    base = {
        "id": "rfb-2", "service": "hosting", "region": "eu", "quantity": 40, "awarded": False,
        "deadline_ms": 700_000, "max_bids": 20, "bids": [], "bidders": [], "min_bond": 0,
        "max_prices": {"account": 2_000_000}, "sla": {"availability_ppm": 990_000},
    }  # fmt: skip
    base.update(kw)
    return base


def _view(**kw: Any) -> View:
    base: dict[str, Any] = dict(
        now_ms=650_000, params=PARAMS, me=ME, contracts=(_contract(),), rfbs=(), hosted=7
    )
    base.update(kw)
    return View(**base)


def test_reports_the_ended_epoch_once() -> None:
    [step] = decide(_view(), ProviderPolicy())
    assert (step.kind, dict(step.body)) == (
        "report",
        {"contract": "c-1", "epoch": 0, "usage": {"account": 7}},
    )
    assert decide(_view(reported=frozenset({("c-1", 0)})), ProviderPolicy()) == []
    assert decide(_view(hosted=None), ProviderPolicy()) == []  # the PDS did not answer
    assert decide(_view(contracts=(_contract(start_ms=700_000),)), ProviderPolicy()) == []


def test_bids_its_spare_capacity_where_its_prices_and_sla_fit() -> None:
    view = _view(hosted=None, rfbs=(_rfb(),))
    [bid] = decide(view, ProviderPolicy())
    assert bid.kind == "bid" and bid.body["quantity"] == 30  # 50 - the 20 under contract
    assert bid.body["prices"] == {"account": 1_000_000}
    assert bid.body["expires_ms"] == 700_000 + 3_600_000
    refused = [
        _rfb(region="us"),
        _rfb(max_prices={"account": 500_000}),
        _rfb(max_prices={"account": 2_000_000, "gb_hour": 10}),
        _rfb(sla={"availability_ppm": 999_900}),
        _rfb(bidders=[ME["did"]]),
        _rfb(deadline_ms=600_000),
        _rfb(min_bond=20_000),
    ]
    for r in refused:
        assert decide(_view(hosted=None, rfbs=(r,)), ProviderPolicy()) == [], r
    suspended = {**ME, "status": "suspended"}
    assert decide(_view(hosted=None, me=suspended, rfbs=(_rfb(),)), ProviderPolicy()) == []


def test_signs_what_was_awarded_to_it_never_below_its_price() -> None:
    awarded = _contract(id="c-2", status="awarded", provider_signed=False, approval="")
    [sign] = decide(_view(hosted=None, contracts=(awarded,)), ProviderPolicy())
    assert (sign.kind, sign.body["contract"]) == ("sign", "c-2")
    cheap = {**awarded, "unit_prices": {"account": 10}}
    assert decide(_view(hosted=None, contracts=(cheap,)), ProviderPolicy()) == []


def test_the_daemon_reports_usage_from_its_pds_to_the_market(tmp_path: Path) -> None:
    acme = signer("acme-u")
    with live_net(tmp_path, 1) as net:
        m = net.market
        register(m, acme, net.pds[0], accounts=20, price=1_000_000, t=net.now[0])
        contract(m, [(acme, 5)], net.now[0] + 10)
        for i in range(2):
            r = httpx.post(
                f"{net.pds[0]}/xrpc/com.atproto.server.createAccount",
                json={"handle": f"u{i}-{secrets.token_hex(3)}.test", "email": f"u{i}@ex.com",
                      "password": "pw-" + secrets.token_hex(6)},
                timeout=30,
            )  # fmt: skip
            assert r.status_code == 200, r.text
        said: list[str] = []
        warned: list[str] = []

        def daemon(password: str) -> ProviderDaemon:
            return ProviderDaemon(
                acme.did, acme.key, net.market_url, net.pds[0], admin_password=password,
                say=said.append, warn=warned.append,
            )  # fmt: skip

        async def ticks(d: ProviderDaemon, n: int) -> list[list[tuple[str, bool]]]:
            try:
                return [[(s.kind, ok) for s, ok in await d.tick()] for _ in range(n)]
            finally:
                await d.aclose()

        net.now[0] = GENESIS + E + 1_000  # epoch 0 is over
        # Without the PDS's admin password it cannot count, so it reports nothing.
        assert asyncio.run(ticks(daemon("wrong"), 1)) == [[]]
        assert warned and "401" in warned[0]
        assert asyncio.run(ticks(daemon(net.passwords[0]), 2)) == [[("report", True)], []]
        [c] = m.state.contracts.values()
        assert dict(m.state.usage[(c.id, 0)].usage) == {"account": 2}
        assert said == [f"report {c.id}: epoch 0 ended: our PDS hosts 2 accounts"]
        assert not any(net.passwords[0] in line for line in said + warned)


def test_a_labeler_reports_for_its_labeler_contracts_only() -> None:
    me = {**ME, "services": ["labeler"], "capacity": {"labeler": {"accounts": 200}},
          "prices": {"labeler": {"account": 1_000}}}  # fmt: skip
    lab = _contract(id="c-lab", service="labeler", unit_prices={"account": 1_000})
    view = _view(me=me, contracts=(_contract(), lab), hosted=9)
    steps = decide(view, ProviderPolicy(service="labeler"))
    assert [(s.kind, dict(s.body)) for s in steps] == [
        ("report", {"contract": "c-lab", "epoch": 0, "usage": {"account": 9}})
    ]
    assert "9 accounts of the network" in steps[0].why
    # never below its registered labeler price
    cheap = _contract(id="c-2", service="labeler", status="awarded", provider_signed=False,
                      unit_prices={"account": 999})  # fmt: skip
    assert (
        decide(_view(me=me, contracts=(cheap,), hosted=None), ProviderPolicy(service="labeler"))
        == []
    )


def test_a_labeler_counts_the_accounts_its_source_lists(tmp_path: Path) -> None:
    with live_net(tmp_path, 1) as net:
        for i in range(3):
            r = httpx.post(
                f"{net.pds[0]}/xrpc/com.atproto.server.createAccount",
                json={"handle": f"l{i}-{secrets.token_hex(3)}.test", "email": f"l{i}@ex.com",
                      "password": "pw-" + secrets.token_hex(6)},
                timeout=30,
            )  # fmt: skip
            assert r.status_code == 200, r.text
        warned: list[str] = []
        d = ProviderDaemon(
            "did:key:zlab", signer("lab").key, net.market_url, net.pds[0],
            policy=ProviderPolicy(service="labeler"), say=warned.append, warn=warned.append,
        )  # fmt: skip
        bad = ProviderDaemon(
            "did:key:zlab", signer("lab").key, net.market_url, net.market_url,
            policy=ProviderPolicy(service="labeler"), say=warned.append, warn=warned.append,
        )  # fmt: skip

        async def count() -> tuple[int | None, int | None]:
            try:
                return await d.hosted(), await bad.hosted()
            finally:
                await d.aclose()
                await bad.aclose()

        # no admin password needed: listRepos is public
        assert asyncio.run(count()) == (3, None)
        assert warned and "listRepos" in warned[0]
