"""The directory over real sockets: uvicorn on a free port, httpx and the atproto SDK as clients."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from atproto import IdResolver
from plaza.atproto.plc import (
    MAX_OPERATION_BYTES,
    LegacyCreate,
    LogEntry,
    PlcOperation,
    create_tombstone,
    create_update,
    did_for_genesis,
    operation_cid,
    sign_operation,
    validate_audit_log,
)
from plaza.services.directory import DirectorySettings, create_app
from plaza.services.runner import ServedApp, ServerThread
from tests.services.directory.helpers import T0, Identity, identity, key


@dataclass
class Clock:
    """The directory's clock, set by the test (the app reads it once per submission)."""

    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class Directory:
    url: str
    clock: Clock
    http: httpx.Client

    def post(self, did: str, op: PlcOperation | Any) -> httpx.Response:
        body = op.to_json() if hasattr(op, "to_json") else op
        return self.http.post(f"{self.url}/{did}", json=body)

    def get(self, path: str) -> httpx.Response:
        return self.http.get(self.url + path)

    def snapshot(self, did: str) -> tuple[str, str]:
        return self.get(f"/{did}/log/audit").text, self.get("/export?after=0").text


@pytest.fixture
def directory(db_url: str) -> Iterator[Directory]:
    clock = Clock()
    app = create_app(DirectorySettings(db_url=db_url), clock=clock)
    with ServerThread([ServedApp("directory", app)]) as (url,), httpx.Client(timeout=10) as http:
        yield Directory(url, clock, http)


def _ok(response: httpx.Response) -> httpx.Response:
    assert response.status_code == 200, response.text
    return response


def _refused(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["error"] == code and body["message"], body
    return body


def test_lifecycle_create_update_recover_tombstone(directory: Directory) -> None:
    alice = identity("alice.test", pds_url="http://127.0.0.1:2583")
    did = alice.did
    assert _ok(directory.post(did, alice.genesis)).text == "OK"

    doc = _ok(directory.get(f"/{did}"))
    assert doc.headers["content-type"].startswith("application/did+ld+json")
    assert doc.json()["alsoKnownAs"] == ["at://alice.test"]
    assert doc.json()["service"] == [
        {
            "id": "#atproto_pds",
            "type": "AtprotoPersonalDataServer",
            "serviceEndpoint": "http://127.0.0.1:2583",
        }
    ]
    assert _ok(directory.get(f"/{did}/data")).json() == {
        "did": did,
        "verificationMethods": {"atproto": alice.signing.did_key()},
        "rotationKeys": [alice.recovery.did_key(), alice.pds.did_key()],
        "alsoKnownAs": ["at://alice.test"],
        "services": {
            "atproto_pds": {
                "type": "AtprotoPersonalDataServer",
                "endpoint": "http://127.0.0.1:2583",
            }
        },
    }
    assert _ok(directory.get(f"/{did}/log")).json() == [alice.genesis.to_json()]
    assert _ok(directory.get(f"/{did}/log/last")).json() == alice.genesis.to_json()
    (entry,) = _ok(directory.get(f"/{did}/log/audit")).json()
    assert entry == {
        "did": did,
        "operation": alice.genesis.to_json(),
        "cid": str(operation_cid(alice.genesis)),
        "nullified": False,
        "createdAt": "2026-03-01T12:00:00.000Z",
    }

    # The hosting key moves the account, then (a bad actor with it) rotates the member out.
    directory.clock.advance(timedelta(hours=1))
    moved = create_update(alice.genesis, alice.pds, pds_endpoint="http://127.0.0.1:2584")
    _ok(directory.post(did, moved))
    directory.clock.advance(timedelta(hours=1))
    hijack = create_update(moved, alice.pds, rotation_keys=[alice.pds.did_key()])
    _ok(directory.post(did, hijack))
    assert directory.get(f"/{did}/data").json()["rotationKeys"] == [alice.pds.did_key()]

    # 71 hours later the member's recovery key (first in priority) undoes the hijack.
    directory.clock.advance(timedelta(hours=71))
    recovery = create_update(moved, alice.recovery, handle="alice-recovered.test")
    _ok(directory.post(did, recovery))
    audit = _ok(directory.get(f"/{did}/log/audit")).json()
    assert [e["nullified"] for e in audit] == [False, False, True, False]
    assert [e["cid"] for e in audit][-2:] == [
        str(operation_cid(hijack)),
        str(operation_cid(recovery)),
    ]
    assert _ok(directory.get(f"/{did}/log")).json() == [
        op.to_json() for op in (alice.genesis, moved, recovery)
    ]
    # What the directory publishes passes an independent audit.
    state = validate_audit_log(did, audit)
    assert state.data is not None and state.data.handle == "alice-recovered.test"
    assert state.data.rotation_keys == (alice.recovery.did_key(), alice.pds.did_key())

    # Tombstone: the document is gone, the history stays.
    directory.clock.advance(timedelta(minutes=5))
    tomb = create_tombstone(recovery, alice.pds)
    _ok(directory.post(did, tomb))
    assert _refused(directory.get(f"/{did}"), 404, "NotFound")["message"] == (
        f"DID not available: {did}"
    )
    _refused(directory.get(f"/{did}/data"), 404, "NotFound")
    assert _ok(directory.get(f"/{did}/log/last")).json() == tomb.to_json()
    assert len(_ok(directory.get(f"/{did}/log/audit")).json()) == 5
    # After the window nothing can bring it back.
    directory.clock.advance(timedelta(hours=73))
    before = directory.snapshot(did)
    late = create_update(recovery, alice.recovery, handle="too-late.test")
    _refused(directory.post(did, late), 400, "LateRecovery")
    assert directory.snapshot(did) == before


def test_bad_submissions_change_nothing(directory: Directory) -> None:
    bob = identity("bob.test")
    _ok(directory.post(bob.did, bob.genesis))
    before = directory.snapshot(bob.did)
    honest = create_update(bob.genesis, bob.pds, handle="bob2.test")
    stranger_signed = sign_operation(replace(honest, sig=None), key("stranger"))
    orphan = identity("orphan.test")
    wrong_prev = create_update(orphan.genesis, orphan.pds, handle="o.test")
    surrogate = json.dumps({**honest.to_json(), "alsoKnownAs": ["at://\ud800"]}).encode()
    padded_sig = {**honest.to_json(), "sig": f"{honest.sig}="}
    oversized = {**honest.to_json(), "alsoKnownAs": ["at://" + "x" * MAX_OPERATION_BYTES]}
    url = f"{directory.url}/{bob.did}"
    cases: list[tuple[httpx.Response, int, str]] = [
        (directory.post(bob.did, stranger_signed), 400, "InvalidSignature"),
        (directory.post(bob.did, wrong_prev), 400, "PrevNotFound"),
        (directory.post(bob.did, padded_sig), 400, "InvalidSignature"),
        (directory.post(bob.did, oversized), 400, "OperationTooLarge"),
        (directory.http.post(url, content=b"x" * 70_000), 400, "OperationTooLarge"),
        (directory.http.post(url, content=b"{not json"), 400, "InvalidRequest"),
        (directory.http.post(url, content=b'{"type":"a","type":"b"}'), 400, "InvalidRequest"),
        (directory.http.post(url, content=b"[NaN]"), 400, "InvalidRequest"),
        (directory.http.post(url, content=b"[" * 60_000), 400, "InvalidRequest"),
        (directory.http.post(url, content=surrogate), 400, "InvalidPlcOperation"),
        (directory.post(bob.did, {"type": "plc_operation"}), 400, "InvalidPlcOperation"),
        (directory.post(bob.did, bob.genesis), 400, "DidAlreadyExists"),
        (directory.post(orphan.did, bob.genesis), 400, "GenesisHashMismatch"),
        (directory.post(orphan.did, wrong_prev), 404, "DidNotFound"),
        (directory.post("did:plc:UPPER", honest), 400, "InvalidRequest"),
    ]
    for response, status, code in cases:
        _refused(response, status, code)
    assert directory.snapshot(bob.did) == before
    _refused(directory.get(f"/{orphan.did}"), 404, "NotFound")
    _refused(directory.get(f"/{orphan.did}/log/audit"), 404, "NotFound")
    _refused(directory.get("/did:web:example.com"), 400, "InvalidRequest")


def test_legacy_and_constraint_violations_are_refused(directory: Directory) -> None:
    carol = identity("carol.test")
    six = (carol.pds.did_key(), *(key(f"k{i}").did_key() for i in range(5)))
    op = sign_operation(replace(carol.genesis, sig=None, rotation_keys=six), carol.pds)
    body = _refused(directory.post(did_for_genesis(op), op), 400, "InvalidPlcOperation")
    assert "1 to 5" in body["message"]
    legacy = sign_operation(
        LegacyCreate(carol.signing.did_key(), carol.recovery.did_key(), "c.test", "https://p"),
        carol.recovery,
    )
    body = _refused(directory.post(did_for_genesis(legacy), legacy), 400, "InvalidPlcOperation")
    assert "legacy" in body["message"]


def test_export_pages_by_sequence_and_time(directory: Directory) -> None:
    people = [identity(f"e{i}.test") for i in range(3)]
    cids = []
    for person in people:
        directory.clock.advance(timedelta(seconds=1))
        _ok(directory.post(person.did, person.genesis))
        cids.append(str(operation_cid(person.genesis)))
    directory.clock.advance(timedelta(seconds=1))
    update = create_update(people[1].genesis, people[1].pds, handle="e1b.test")
    _ok(directory.post(people[1].did, update))
    cids.append(str(operation_cid(update)))

    seen: list[dict[str, Any]] = []
    after = 0
    while True:
        page = _ok(directory.get(f"/export?after={after}&count=3"))
        assert page.headers["content-type"].startswith("application/jsonlines")
        if not page.text:
            break
        lines = [json.loads(line) for line in page.text.split("\n")]
        assert 1 <= len(lines) <= 3
        seen.extend(lines)
        after = lines[-1]["seq"]
    assert [line["cid"] for line in seen] == cids
    assert [line["seq"] for line in seen] == sorted({line["seq"] for line in seen})
    assert {line["type"] for line in seen} == {"sequenced_op"}
    assert seen[3]["operation"] == update.to_json() and seen[3]["did"] == people[1].did

    legacy = [json.loads(x) for x in _ok(directory.get("/export")).text.split("\n")]
    assert [LogEntry.from_json(x).cid for x in legacy] == cids
    since = legacy[1]["createdAt"]
    later = _ok(directory.get(f"/export?after={since}&count=1")).text.split("\n")
    assert [json.loads(x)["cid"] for x in later] == cids[2:3]
    _refused(directory.get("/export?count=0"), 400, "InvalidRequest")
    _refused(directory.get("/export?after=yesterday"), 400, "InvalidRequest")
    # str.isdigit() is true for superscripts that int() refuses, and int() refuses
    # more than 4300 digits: both must be a 400, not a crash.
    for query in ("count=\u00b2", "after=\u00b2", "count=" + "9" * 5000, "after=" + "9" * 5000):
        _refused(directory.get(f"/export?{query}"), 400, "InvalidRequest")


def test_health(directory: Directory) -> None:
    assert _ok(directory.get("/_health")).json() == {"version": "0.1.0"}
    _refused(directory.get("/did:plc:aaaaaaaaaaaaaaaaaaaaaaaa/nothing"), 404, "NotFound")


def test_the_atproto_sdk_resolves_our_dids(directory: Directory) -> None:
    dana = identity("dana.test", pds_url="http://127.0.0.1:2583")
    _ok(directory.post(dana.did, dana.genesis))
    resolver = IdResolver(plc_url=directory.url)
    doc = resolver.did.resolve(dana.did)
    assert doc is not None and doc.id == dana.did
    data = resolver.did.resolve_atproto_data(dana.did)
    assert data.handle == "dana.test"
    assert data.pds == "http://127.0.0.1:2583"
    assert data.signing_key == dana.signing.did_key()
    assert resolver.did.resolve_atproto_key(dana.did) == dana.signing.did_key()
    # A tombstoned DID resolves to nothing, the way the SDK treats the reference's 404.
    directory.clock.advance(timedelta(seconds=1))
    _ok(directory.post(dana.did, create_tombstone(dana.genesis, dana.pds)))
    assert IdResolver(plc_url=directory.url).did.resolve(dana.did) is None
    assert resolver.did.resolve("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa") is None


def _race(urls: list[str], did: str, ops: list[PlcOperation]) -> list[int]:
    barrier = threading.Barrier(len(ops))
    statuses: list[int] = []

    def submit(i: int) -> None:
        with httpx.Client(timeout=30) as http:
            barrier.wait()
            response = http.post(f"{urls[i % len(urls)]}/{did}", json=ops[i].to_json())
            statuses.append(response.status_code)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(len(ops))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return statuses


def test_racing_submissions_through_two_directory_processes(db_url: str) -> None:
    """Two directory servers on one database: of N updates on one prev, exactly one lands."""
    erin: Identity = identity("erin.test")
    apps = [
        ServedApp("a", create_app(DirectorySettings(db_url=db_url))),
        ServedApp("b", create_app(DirectorySettings(db_url=db_url))),
    ]
    with ServerThread(apps) as urls, httpx.Client(timeout=10) as http:
        _ok(http.post(f"{urls[0]}/{erin.did}", json=erin.genesis.to_json()))
        ops = [create_update(erin.genesis, erin.pds, handle=f"r{i}.test") for i in range(8)]
        statuses = _race(urls, erin.did, ops)
        assert statuses.count(200) == 1 and set(statuses) <= {200, 400, 409}, statuses
        audit = _ok(http.get(f"{urls[1]}/{erin.did}/log/audit")).json()
        assert len(audit) == 2 and not any(e["nullified"] for e in audit)
        validate_audit_log(erin.did, audit)
