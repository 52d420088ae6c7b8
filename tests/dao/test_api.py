"""The DAO HTTP API over a real socket (uvicorn) and a real SQLite ledger."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from plaza.atproto import datamodel
from plaza.atproto.plc import PLAZA_KEY, create_genesis, create_update, proof_value
from plaza.dao.api import ApiSettings, create_app
from plaza.ledger import Event, Head, MemoryEventStore, SqlEventStore, merkle, sign_event
from plaza.ledger.keystore import Signer
from plaza.services.directory import DirectorySettings
from plaza.services.directory import create_app as create_directory
from plaza.services.directory.client import current_head
from plaza.services.runner import ServedApp, ServerThread
from tests.dao.conftest import DAY, T0, World, found, signer


@pytest.fixture
def api(tmp_path: Path, world: World, free_port: int) -> Iterator[tuple[str, int]]:
    url = f"sqlite://{tmp_path / 'ledger.db'}"
    dao = found(SqlEventStore.open(url), world)
    pid = dao.propose(
        world.alice, "treasury", "Pay the relay", T0, effect={"amount": 500, "payee": "relay co-op"}
    )
    dao.store.close()
    app = create_app(ApiSettings(db_url=url, clock=lambda: T0 + 10))
    with ServerThread([ServedApp("dao", app, "127.0.0.1", free_port)]) as (base,):
        yield base, pid


def _signed(
    base: str,
    who: Signer,
    type_: str,
    payload: dict[str, Any],
    *,
    key: Signer | None = None,
    at: int = T0 + 10,
) -> Event:
    head = httpx.get(f"{base}/ledger/head").json()
    return sign_event(
        (key or who).key,
        seq=head["next_seq"],
        prev_hash=bytes.fromhex(head["prev"]),
        time=max(head["time"], at),
        author_did=who.did,
        type=type_,
        payload=payload,
    )


def _post(base: str, ev: Event) -> httpx.Response:
    return httpx.post(f"{base}/ledger/events", json=datamodel.to_json(ev.to_map()))


def test_openapi_and_reads(api: tuple[str, int]) -> None:
    base, pid = api
    spec = httpx.get(f"{base}/openapi.json").json()
    assert "/ledger/events" in spec["paths"] and "/dao/proposals/{pid}" in spec["paths"]
    summary = httpx.get(f"{base}/dao").json()
    assert (summary["members"], summary["proposals"], summary["treasury"]) == (3, 1, 1_000_000)
    prop = httpx.get(f"{base}/dao/proposals/{pid}").json()
    assert prop["outcome"]["status"] == "open"
    assert httpx.get(f"{base}/dao/proposals/999").status_code == 404
    assert "Assets:Treasury" in httpx.get(f"{base}/dao/books?format=beancount").text
    assert httpx.get(f"{base}/dao/mandate").json()["version"] == 1
    assert httpx.get(f"{base}/dao/accounts").json() == {}  # no placements yet
    assert httpx.get(f"{base}/dao/legal").json()[0]["record"]["legal_form"]


def test_signed_event_is_the_write_path(api: tuple[str, int], world: World) -> None:
    base, pid = api
    vote = _signed(base, world.bob, "dao.vote.cast", {"proposal": pid, "ballot": {"choice": "yes"}})
    res = _post(base, vote)
    assert res.status_code == 200, res.text
    assert res.json() == {"seq": vote.seq, "hash": vote.hash.hex(), "type": "dao.vote.cast"}
    # The same event again: its position is taken.
    again = _post(base, vote)
    assert (again.status_code, again.json()["error"]) == (409, "AppendConflict")
    # A vote signed by the wrong key.
    forged = _signed(
        base,
        world.alice,
        "dao.vote.cast",
        {"proposal": pid, "ballot": {"choice": "no"}},
        key=world.dave,
    )
    res = _post(base, forged)
    assert (res.status_code, res.json()["error"]) == (401, "BadSignature")
    # A well-signed vote by a non-member, a second vote, a malformed ballot.
    for who, ballot, status, code in [
        (world.dave, {"choice": "no"}, 403, "NotMember"),
        (world.bob, {"choice": "no"}, 409, "AlreadyVoted"),
        (world.carol, {"choice": "perhaps"}, 400, "InvalidBallot"),
    ]:
        res = _post(base, _signed(base, who, "dao.vote.cast", {"proposal": pid, "ballot": ballot}))
        assert (res.status_code, res.json()["error"]) == (status, code), res.text
    # Income: only a treasurer (alice, bob) or an agent books it, once per reference.
    gift = {"kind": "donation", "amount": 10**9, "currency": "EUR", "from": "me", "ref": "r1"}
    res = _post(base, _signed(base, world.carol, "dao.treasury.received", gift))
    assert (res.status_code, res.json()["error"]) == (403, "Forbidden"), res.text
    assert _post(base, _signed(base, world.alice, "dao.treasury.received", gift)).status_code == 200
    res = _post(base, _signed(base, world.bob, "dao.treasury.received", gift))
    assert (res.status_code, res.json()["error"]) == (409, "DuplicatePayment"), res.text
    res = httpx.post(f"{base}/ledger/events", json={"seq": "nope"})
    assert (res.status_code, res.json()["error"]) == (400, "InvalidRequest")
    huge = httpx.post(f"{base}/ledger/events", json={"payload": "x" * 600_000})
    assert (huge.status_code, huge.json()["error"]) == (413, "PayloadTooLarge")
    events = httpx.get(f"{base}/ledger/events?start=0&limit=100").json()
    assert [e["type"] for e in events][-1] == "dao.treasury.received"
    assert len(events) == vote.seq + 2


def test_proofs_over_http(api: tuple[str, int]) -> None:
    base, _ = api
    p = httpx.get(f"{base}/ledger/proofs/inclusion?seq=1").json()
    merkle.verify_inclusion(
        1,
        p["size"],
        bytes.fromhex(p["leaf"]),
        [bytes.fromhex(h) for h in p["proof"]],
        bytes.fromhex(p["root"]),
    )
    c = httpx.get(f"{base}/ledger/proofs/consistency?old=1").json()
    merkle.verify_consistency(
        1,
        c["new"],
        bytes.fromhex(c["old_root"]),
        bytes.fromhex(c["new_root"]),
        [bytes.fromhex(h) for h in c["proof"]],
    )


def test_tally_endpoint(api: tuple[str, int]) -> None:
    base, _ = api
    body = {
        "method": "approval",
        "candidates": ["a", "b"],
        "ballots": [{"approvals": ["a", "b"]}, {"approvals": ["b"]}, {"approvals": ["c"]}],
    }
    out = httpx.post(f"{base}/dao/tally", json=body).json()
    assert (out["winner"], out["totals"], out["invalid"]) == (
        "b",
        {"a": 1, "b": 2},
        [{"index": 2, "reason": "unknown candidate 'c'"}],
    )
    bad = httpx.post(f"{base}/dao/tally", json={"method": "borda"})
    assert (bad.status_code, bad.json()["error"]) == (400, "InvalidBallotFile")


def test_bodies_are_capped_while_streaming(api: tuple[str, int]) -> None:
    """A chunked body declares no length: the cap must hold while reading, not after."""
    base, _ = api

    def chunks() -> Iterator[bytes]:
        yield b'{"payload": "'
        for _ in range(64):
            yield b"x" * 16_384
        yield b'"}'

    for path in ("/ledger/events", "/dao/tally"):
        res = httpx.post(f"{base}{path}", content=chunks())
        assert (res.status_code, res.json()["error"]) == (413, "PayloadTooLarge"), res.text
    deep = httpx.post(f"{base}/ledger/events", content=b"[" * 100_000)
    assert (deep.status_code, deep.json()["error"]) == (400, "InvalidRequest"), deep.text
    listed = httpx.post(f"{base}/ledger/events", json=[1, 2])
    assert (listed.status_code, listed.json()["error"]) == (400, "InvalidRequest")
    for path in ("/ledger/events", "/dao/tally"):
        lone = httpx.post(f"{base}{path}", content=b'{"payload": "\\ud800"}')
        assert (lone.status_code, lone.json()["error"]) == (400, "InvalidRequest"), lone.text
        assert "Unicode" in lone.json()["message"]
    assert httpx.get(f"{base}/ledger/head").json()["size"] == 2  # genesis and the proposal


def test_identity_proofs_must_be_current(tmp_path: Path, world: World, free_port: int) -> None:
    """With a directory, the API refuses a binding whose proof the DID has since superseded
    (say the key it lists was stolen and replaced): the ledger's rules alone cannot know."""
    directory = DirectorySettings(db_url=f"sqlite:///{tmp_path / 'directory.db'}")
    with ServerThread([ServedApp("directory", create_directory(directory))]) as (dir_url,):
        recovery = signer("api-recovery")
        stolen, fresh = signer("api-stolen"), signer("api-fresh")
        did, genesis = create_genesis(
            key=recovery.key,
            rotation_keys=[recovery.did_key],
            signing_key=recovery.did_key,
            handle="api.test",
            pds_endpoint="https://pds.example",
        )
        ops = [genesis]
        for k in (stolen, fresh):
            methods = {PLAZA_KEY: k.did_key}
            ops.append(create_update(ops[-1], recovery.key, verification_methods=methods))
        for op in ops:
            assert httpx.post(f"{dir_url}/{did}", json=op.to_json()).status_code == 200
        url = f"sqlite://{tmp_path / 'ledger.db'}"
        found(SqlEventStore.open(url), world).store.close()
        settings = ApiSettings(
            db_url=url, identity_head=partial(current_head, dir_url), clock=lambda: T0 + 10
        )
        with ServerThread([ServedApp("dao", create_app(settings), "127.0.0.1", free_port)]) as (
            base,
        ):
            payload = {"did": did, "role": "person", "proof": proof_value(ops[:2])}
            stale = _signed(base, stolen, "dao.identity.registered", payload, key=stolen)
            res = _post(base, stale)
            assert (res.status_code, res.json()["error"]) == (409, "StaleIdentityProof"), res.text
            payload = {"did": did, "role": "person", "proof": proof_value(ops)}
            ok = _signed(base, fresh, "dao.identity.registered", payload, key=fresh)
            res = _post(base, ok)
            assert res.status_code == 200, res.text


def test_event_time_must_be_near_the_servers_clock(tmp_path: Path, world: World) -> None:
    """Event time is the author's claim, and every window (votes, vetoes, delegations,
    vouching suspensions) is measured in it: one event stamped a year ahead would close
    every vote and every veto window at once. The server holds it to its own clock."""
    url = f"sqlite://{tmp_path / 'ledger.db'}"
    dao = found(SqlEventStore.open(url), world)
    pid = dao.propose(world.alice, "signal", "Colour", T0 + 5, choices=("red", "blue"))
    dao.store.close()
    now = T0 + DAY
    settings = ApiSettings(db_url=url, clock=lambda: now)
    with ServerThread([ServedApp("dao", create_app(settings))]) as (base,):
        stranger = signer("time-traveller")  # anyone may register their own did:key
        ahead = _signed(base, stranger, "dao.identity.registered", {"did": stranger.did,
                        "role": "person"}, at=now + 365 * DAY)  # fmt: skip
        res = _post(base, ahead)
        assert (res.status_code, res.json()["error"]) == (400, "InvalidEventTime"), res.text
        late = _signed(base, world.bob, "dao.vote.cast",
                       {"proposal": pid, "ballot": {"choice": "red"}}, at=T0 + 10)  # fmt: skip
        res = _post(base, late)  # after the head, but back-dated a day before now
        assert (res.status_code, res.json()["error"]) == (400, "InvalidEventTime"), res.text
        assert httpx.get(f"{base}/ledger/head").json()["size"] == 2
        on_time = _signed(base, world.bob, "dao.vote.cast",
                          {"proposal": pid, "ballot": {"choice": "red"}}, at=now)  # fmt: skip
        assert _post(base, on_time).status_code == 200


def test_only_dao_events_are_posted_here(api: tuple[str, int]) -> None:
    """Any did:key verifies its own signature, and the DAO's rules let other planes'
    events pass: without this check anyone could append market events the market would
    refuse on replay (breaking 'plaza ledger verify' for everyone), or any junk at all."""
    base, _ = api
    stranger = signer("junk-poster")
    for type_ in ("market.provider.registered", "junk.spam"):
        ev = _signed(base, stranger, type_, {"blob": "x" * 1000})
        res = _post(base, ev)
        assert (res.status_code, res.json()["error"]) == (400, "InvalidRequest"), res.text
    assert httpx.get(f"{base}/ledger/head").json()["size"] == 2


def test_malformed_queries_answer_in_the_error_format(api: tuple[str, int]) -> None:
    base, _ = api
    for path in ("/ledger/proofs/inclusion?seq=-1", "/ledger/events?limit=0", "/dao/proposals/x"):
        res = httpx.get(base + path)
        assert res.status_code == 400, (path, res.text)
        assert res.json()["error"] == "InvalidRequest" and res.json()["message"], res.text


class _BrokenStore(MemoryEventStore):
    """A ledger store whose reads fail once ``broken`` is set, with an error whose text
    holds what a server must not show (a path)."""

    broken = False

    def read_raw(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, bytes]]:
        if self.broken:
            raise RuntimeError("disk on fire: /var/lib/plaza/secret-dao.db")
        return super().read_raw(start, stop)

    def head(self) -> Head:
        if self.broken:
            raise RuntimeError("disk on fire: /var/lib/plaza/secret-dao.db")
        return super().head()


def test_a_server_failure_answers_json_without_internals(
    world: World, free_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    store = _BrokenStore()
    dao = found(store, world)
    app = create_app(ApiSettings(db_url="unused", clock=lambda: T0 + 10), dao=dao)
    with ServerThread([ServedApp("dao", app, "127.0.0.1", free_port)]) as (base,):
        assert httpx.get(f"{base}/dao").status_code == 200
        store.broken = True
        with caplog.at_level(logging.ERROR, logger="plaza.dao.api"):
            r = httpx.get(f"{base}/dao")
        assert r.status_code == 500, r.text
        assert r.headers["content-type"] == "application/json"
        assert r.json()["error"] == "InternalServerError"
        for internal in ("disk on fire", "secret-dao", "RuntimeError", "Traceback"):
            assert internal not in r.text
        ref = r.json()["message"].split("reference ")[1].split(" ")[0]
        logged = [x for x in caplog.records if ref in x.getMessage()]
        assert len(logged) == 1 and "disk on fire" in str(logged[0].exc_info[1])  # type: ignore[index]
        store.broken = False  # the server kept running
        assert httpx.get(f"{base}/dao").status_code == 200
        r = httpx.get(f"{base}/no/such/route")
        assert (r.status_code, r.json()["error"]) == (404, "NotFound")
