"""The market's HTTP API over a real socket (uvicorn on loopback), on every ledger backend."""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from plaza.atproto import datamodel
from plaza.ledger import EventStore, Ledger, MemoryEventStore, SqlEventStore
from plaza.market import Market, MarketParams
from plaza.market.api import MarketSettings, create_app
from plaza.services.runner import ServedApp, ServerThread
from tests.market.conftest import (
    EPOCH_S,
    GENESIS,
    HOUR,
    WINDOW_S,
    Party,
    StoreFactory,
    World,
    key_for,
    market_mandate,
    plc_identity,
)
from tests.market.test_end_to_end import RFB, all_up

TOKEN = "t-" + secrets.token_hex(8)


class Client:
    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=10)

    def post(self, path: str, body: Any, *, admin: bool = False) -> httpx.Response:
        headers = {"Authorization": f"Bearer {TOKEN}"} if admin else {}
        return self.http.post(path, json=datamodel.to_json(body), headers=headers)

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.http.get(path, params=params)


@pytest.fixture
def served(store_factory: StoreFactory) -> Iterator[tuple[Client, World, list[int]]]:
    now = [GENESIS - 6 * HOUR]
    op = key_for(200)
    market = Market(
        Ledger(store_factory()),
        operator_did=op.did_key(),
        operator_key=op,
        mandate=market_mandate(),
    )
    market.open(MarketParams(genesis_ms=GENESIS, epoch_s=EPOCH_S, window_s=WINDOW_S), now[0])
    settings = MarketSettings(
        ledger_url="memory:",
        operator_did=op.did_key(),
        operator_key=op,
        mandate=market.mandate,
        admin_token=TOKEN,
        clock=lambda: now[0],
    )
    world = World(market, Party(op.did_key(), op))
    with ServerThread([ServedApp("market", create_app(settings, market=market))]) as (url,):
        yield Client(url), world, now


def registration(world: World, name: str, n: int, services: list[str], now: int) -> dict[str, Any]:
    key = key_for(n)
    did, proof = plc_identity(key, name)
    world.parties[name] = Party(did, key)
    hosting = "hosting" in services
    return world.parties[name].sign(
        {
            "$type": "registration",
            "provider": did,
            "market": world.market.operator_did,
            "key": key.did_key(),
            "services": services,
            "regions": ["eu"],
            "capacity": {"hosting": {"accounts": 1000}} if hosting else {},
            "prices": {"hosting": {"account": 5_000_000}} if hosting else {},
            "bond": 100_000 if hosting else 0,
            "endpoint": f"https://{name}.example",
            "nonce": f"reg-{name}",
            "signed_ms": now,
            "proof": proof,
        }
    )


def test_api_end_to_end(served: tuple[Client, World, list[int]]) -> None:
    api, world, now = served
    assert api.get("/_health").json()["open"] is True
    assert "/market/bids" in api.get("/openapi.json").json()["paths"]
    for i, name in enumerate(("a", "b", "c")):
        r = api.post("/market/providers", registration(world, name, 10 + i, ["hosting"], now[0]))
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "probation"
    for i, name in enumerate(("p1", "p2", "p3")):
        doc = registration(world, name, 20 + i, ["prober"], now[0])
        assert api.post("/market/providers", doc).status_code == 200
    assert len(api.get("/market/providers", service="hosting").json()) == 3

    # Registering twice is a replay; an operator command without the token is refused.
    again = api.post("/market/providers", world.registration("a"))
    assert (again.status_code, again.json()["error"]) == (409, "Replayed")
    assert api.post("/market/rfbs", RFB).status_code == 401
    now[0] = GENESIS - 3 * HOUR
    r = api.post("/market/rfbs", RFB, admin=True)
    assert r.status_code == 200, r.text
    rid = r.json()["id"]

    now[0] = GENESIS - int(2.5 * HOUR)
    unsigned = world.bid("a", rid, account=4_000_000, sign=False)
    r = api.post("/market/bids", unsigned)
    assert (r.status_code, r.json()["error"]) == (401, "Unsigned")
    r = api.post("/market/bids", world.bid("c", rid, account=11_000_000))
    assert (r.status_code, r.json()["error"]) == (422, "OverMaxPrice")
    # A declared bond counts only once the operator records the payment's receipt.
    r = api.post("/market/bids", world.bid("a", rid, account=4_000_000, nonce="early"))
    assert (r.status_code, r.json()["error"]) == (422, "BondTooSmall")
    for name in ("a", "b", "c"):
        did = world.party(name).did
        receipt = {"amount": 100_000, "reference": f"sepa-{name}"}
        assert api.post(f"/market/providers/{did}/bond", receipt).status_code == 401
        r = api.post(f"/market/providers/{did}/bond", receipt, admin=True)
        assert (r.status_code, r.json()["bond"]) == (200, 100_000), r.text
    again = {"amount": 1, "reference": "sepa-a"}
    r = api.post(f"/market/providers/{world.party('b').did}/bond", again, admin=True)
    assert (r.status_code, r.json()["error"]) == (409, "Replayed")
    for name, price in (("a", 4_000_000), ("b", 5_000_000), ("c", 6_000_000)):
        r = api.post("/market/bids", world.bid(name, rid, account=price))
        assert r.status_code == 200, r.text

    now[0] = GENESIS - 2 * HOUR
    r = api.post(f"/market/rfbs/{rid}/award", {}, admin=True)
    assert r.status_code == 200, r.text
    award = r.json()
    assert [ln["allocated"] for ln in award["lines"]] == [400, 400, 200]
    assert all("score" in ln["reason"] for ln in award["lines"])
    for cid in award["contracts"]:
        c = api.get(f"/market/contracts/{cid}").json()
        name = next(n for n, p in world.parties.items() if p.did == c["provider"])
        doc = world.party(name).sign(
            {"$type": "terms", "provider": c["provider"], "market": world.market.operator_did,
             "contract": cid,
             "terms_digest": c["terms_digest"], "nonce": f"t-{cid}"}
        )  # fmt: skip
        assert api.post(f"/market/contracts/{cid}/sign", doc).status_code == 200
    now[0] = GENESIS - HOUR
    for cid in award["contracts"]:
        r = api.post(f"/market/contracts/{cid}/approve", {}, admin=True)
        assert r.json()["status"] == "active", r.text

    now[0] = GENESIS + EPOCH_S * 1000 + 60_000
    for p in ("p1", "p2", "p3"):
        doc = world.probes(p, 0, {n: all_up(100) for n in ("a", "b", "c")})
        assert api.post("/market/probes", doc).status_code == 200
    replay = api.post("/market/probes", doc)
    assert (replay.status_code, replay.json()["error"]) == (409, "Replayed")
    ca = award["contracts"][0]
    usage = world.usage("a", ca, 0, {"account": 400})
    assert api.post("/market/usage", usage).status_code == 200
    assert api.post("/market/escrow", {"amount": 10_000}, admin=True).json() == {"escrow": 10_000}
    r = api.post("/market/settle", {"epoch": 0}, admin=True)
    assert r.status_code == 200, r.text
    result = r.json()
    # 400 accounts x 4,000,000 = 1,600,000,000 millionths of a cent = 1600 cents.
    assert result["payments"] == {f"inv-{ca}-0": 1600}
    inv = api.get(f"/market/invoices/inv-{ca}-0").json()
    assert (inv["amount"], inv["paid"], inv["outstanding"]) == (1600, 1600, 0)
    books = api.get("/market/books").text
    assert "Expenses:Infrastructure  16.00 EUR" in books
    missing = api.get("/market/invoices/inv-c-9-0")
    assert (missing.status_code, missing.json()["error"]) == (404, "NotFound")


def test_api_refuses_a_registration_for_another_market(
    served: tuple[Client, World, list[int]],
) -> None:
    api, world, now = served
    doc = registration(world, "a", 10, ["hosting"], now[0])
    body = {k: v for k, v in doc.items() if k != "sig"}
    elsewhere = world.party("a").sign({**body, "market": key_for(201).did_key()})
    r = api.post("/market/providers", elsewhere)
    assert (r.status_code, r.json()["error"]) == (403, "WrongMarket"), r.text
    assert key_for(201).did_key() in r.json()["message"]
    assert api.get("/market/providers").json() == []
    assert api.post("/market/providers", doc).status_code == 200


def test_api_refuses_large_bodies_and_answers_errors_in_one_shape(
    served: tuple[Client, World, list[int]],
) -> None:
    from plaza.market.api import MAX_BODY

    api, world, _ = served
    size = len(world.market.ledger)
    padded = {"$type": "registration", "pad": "x" * MAX_BODY}
    # Declared too large: refused before the body is read.
    r = api.http.post("/market/providers", json=padded)
    assert (r.status_code, r.json()["error"]) == (413, "PayloadTooLarge")
    assert str(MAX_BODY) in r.json()["message"]

    # Streamed without a length (chunked): refused once it passes the limit.
    def chunks() -> Iterator[bytes]:
        yield b'{"pad": "'
        for _ in range(MAX_BODY // 65_536 + 2):
            yield b"x" * 65_536
        yield b'"}'

    r = api.http.post(
        "/market/bids", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in r.request.headers
    assert (r.status_code, r.json()["error"]) == (413, "PayloadTooLarge")
    r = api.http.post(
        "/market/rfbs",
        content=chunks(),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    assert (r.status_code, r.json()["error"]) == (413, "PayloadTooLarge")
    assert len(world.market.ledger) == size

    # FastAPI's own errors answer {"error", "message"} too.
    r = api.post("/market/rfbs", {"service": "hosting"}, admin=True)
    assert (r.status_code, r.json()["error"]) == (400, "InvalidRequest"), r.text
    assert "body" in r.json()["message"]
    r = api.http.post(
        "/market/bids", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert (r.status_code, set(r.json())) == (400, {"error", "message"}), r.text
    r = api.get("/market/nowhere")
    assert (r.status_code, r.json()["error"]) == (404, "NotFound")
    r = api.http.delete("/market/rfbs")
    assert (r.status_code, r.json()["error"]) == (405, "MethodNotAllowed")
    # A lone surrogate is not text: refused before a handler or the ledger sees it.
    r = api.http.post(
        "/market/providers",
        content=b'{"$type": "registration", "name": "\\ud800"}',
        headers={"Content-Type": "application/json"},
    )
    assert (r.status_code, r.json()["error"]) == (400, "InvalidRequest"), r.text
    assert "Unicode" in r.json()["message"]
    # A body under the limit still reaches the handlers.
    r = api.post("/market/providers", {"$type": "registration"})
    assert (r.status_code, r.json()["error"]) == (400, "InvalidRequest")
    assert len(world.market.ledger) == size


class BrokenStore(MemoryEventStore):
    """A ledger store whose reads fail once ``broken`` is set (a disk gone bad), with an
    error whose text holds what a server must not show: a path, the kind of failure."""

    broken = False

    def read_raw(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, bytes]]:
        if self.broken:
            raise RuntimeError("disk on fire: /var/lib/plaza/secret-ledger.db")
        return super().read_raw(start, stop)


def serve_over(store: EventStore) -> ServerThread:
    op = key_for(200)
    market = Market(Ledger(store), operator_did=op.did_key(), operator_key=op,
                    mandate=market_mandate())  # fmt: skip
    market.open(MarketParams(genesis_ms=GENESIS, epoch_s=EPOCH_S, window_s=WINDOW_S), GENESIS)
    settings = MarketSettings(ledger_url="memory:", operator_did=op.did_key(), operator_key=op,
                              mandate=market.mandate, admin_token=TOKEN)  # fmt: skip
    return ServerThread([ServedApp("market", create_app(settings, market=market))])


def logged_error(body: dict[str, str], caplog: pytest.LogCaptureFixture) -> str:
    """The text of the exception the server logged under the error message's reference."""
    found = re.search(r"reference ([0-9a-f]{12})", body["message"])
    assert found, body
    records = [r for r in caplog.records if found.group(1) in r.getMessage()]
    assert len(records) == 1 and records[0].exc_info is not None
    return str(records[0].exc_info[1])


def test_api_answers_an_unexpected_failure_in_json_without_internals(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = BrokenStore()
    with serve_over(store) as (url,):
        api = Client(url)
        assert api.get("/market").status_code == 200
        store.broken = True
        with caplog.at_level(logging.ERROR, logger="plaza.market.api"):
            responses = [api.get("/market"), api.post("/market/bids", {"$type": "bid"})]
        for r in responses:
            assert r.status_code == 500, r.text
            assert r.headers["content-type"] == "application/json"
            body = r.json()
            assert set(body) == {"error", "message"} and body["error"] == "InternalServerError"
            for internal in ("disk on fire", "secret-ledger", "RuntimeError", "Traceback"):
                assert internal not in r.text
            assert "disk on fire" in logged_error(body, caplog)  # in the server's log
        store.broken = False  # the server kept running
        assert api.get("/market").json()["operator"] == key_for(200).did_key()


def test_api_answers_a_storage_failure_with_its_code_but_not_its_details(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = SqlEventStore.open(f"sqlite://{tmp_path / 'market.db'}")
    with serve_over(store) as (url,):
        api = Client(url)
        assert api.get("/market").status_code == 200
        store.close()  # the database goes away under the running market
        with caplog.at_level(logging.ERROR, logger="plaza.market.api"):
            r = api.get("/market")
        assert (r.status_code, r.json()["error"]) == (503, "StorageError"), r.text
        assert "sqlite" not in r.text.lower() and "closed" not in r.text
        assert "sqlite" in logged_error(r.json(), caplog)
