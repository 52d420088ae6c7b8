"""Bad requests get the right XRPC error, and change nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from plaza.services.pds.jwt import HmacSigner
from tests.services.pds.conftest import Network


def _post(text: str = "ok") -> dict[str, Any]:
    return {"$type": "app.bsky.feed.post", "text": text, "createdAt": "2026-01-01T00:00:00.000Z"}


class Probe:
    """One account, and a way to check that nothing about it changed."""

    def __init__(self, network: Network) -> None:
        self.url = network.pds[0]
        self.acct = network.new_account(0, prefix="err")
        self.did = self.acct["did"]
        self.auth = {"authorization": f"Bearer {self.acct['access']}"}
        self.secret = bytes.fromhex(
            json.loads((network.data_dirs[0] / "secrets.json").read_text())["jwt_secret"]
        )

    def state(self) -> tuple[str, int, list[str]]:
        head = httpx.get(
            f"{self.url}/xrpc/com.atproto.sync.getLatestCommit", params={"did": self.did}
        ).json()
        records = httpx.get(
            f"{self.url}/xrpc/com.atproto.repo.listRecords",
            params={"repo": self.did, "collection": "app.bsky.feed.post"},
        ).json()
        blobs = httpx.get(
            f"{self.url}/xrpc/com.atproto.sync.listBlobs", params={"did": self.did}
        ).json()["cids"]
        return head["rev"], len(records["records"]), blobs

    def post(self, nsid: str, **kw: Any) -> httpx.Response:
        headers = {**self.auth, **kw.pop("headers", {})}
        return httpx.post(f"{self.url}/xrpc/{nsid}", headers=headers, timeout=30, **kw)


@pytest.fixture
def probe(network: Network) -> Iterator[Probe]:
    p = Probe(network)
    ok = p.post(
        "com.atproto.repo.createRecord",
        json={"repo": p.did, "collection": "app.bsky.feed.post", "record": _post()},
    )
    assert ok.status_code == 200
    before = p.state()
    yield p
    assert p.state() == before, "a refused request changed the repository"


def _expect(resp: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body: dict[str, Any] = resp.json()
    assert body["error"] == error, body
    assert isinstance(body["message"], str) and body["message"]
    return body


def test_malformed_json(probe: Probe) -> None:
    resp = probe.post(
        "com.atproto.repo.createRecord",
        content=b'{"repo": "x", ',
        headers={"content-type": "application/json"},
    )
    _expect(resp, 400, "InvalidRequest")


def test_unknown_collection_with_validation(probe: Probe) -> None:
    resp = probe.post(
        "com.atproto.repo.createRecord",
        json={
            "repo": probe.did,
            "collection": "com.example.nothing",
            "validate": True,
            "record": {"$type": "com.example.nothing", "x": 1},
        },
    )
    body = _expect(resp, 400, "InvalidRequest")
    assert "Lexicon not found" in body["message"]


def test_malformed_collection(probe: Probe) -> None:
    resp = probe.post(
        "com.atproto.repo.createRecord",
        json={"repo": probe.did, "collection": "not a nsid", "record": _post()},
    )
    _expect(resp, 400, "InvalidRequest")


@pytest.mark.parametrize(
    "record",
    [
        {"$type": "app.bsky.feed.post", "text": "no createdAt"},
        {
            "$type": "app.bsky.feed.post",
            "text": "x" * 3001,
            "createdAt": "2026-01-01T00:00:00.000Z",
        },
        {"$type": "app.bsky.feed.post", "text": 5, "createdAt": "2026-01-01T00:00:00.000Z"},
        {"$type": "app.bsky.feed.like", "createdAt": "2026-01-01T00:00:00.000Z"},
    ],
    ids=["missing-field", "too-long", "wrong-type", "wrong-$type"],
)
def test_record_failing_its_lexicon(probe: Probe, record: dict[str, Any]) -> None:
    resp = probe.post(
        "com.atproto.repo.createRecord",
        json={"repo": probe.did, "collection": "app.bsky.feed.post", "record": record},
    )
    _expect(
        resp, 400, "InvalidRequest" if record["$type"] == "app.bsky.feed.post" else "InvalidRecord"
    )


def test_oversized_blob(probe: Probe) -> None:
    resp = probe.post(
        "com.atproto.repo.uploadBlob",
        content=b"\0" * 200_001,
        headers={"content-type": "image/png"},
    )
    _expect(resp, 413, "BlobTooLarge")

    def chunks() -> Iterator[bytes]:  # no content-length: caught while streaming
        for _ in range(30):
            yield b"\1" * 10_000

    resp = probe.post(
        "com.atproto.repo.uploadBlob", content=chunks(), headers={"content-type": "image/png"}
    )
    _expect(resp, 413, "BlobTooLarge")


def test_wrong_password(probe: Probe) -> None:
    resp = httpx.post(
        f"{probe.url}/xrpc/com.atproto.server.createSession",
        json={"identifier": probe.acct["handle"], "password": "not it"},
    )
    _expect(resp, 401, "AuthenticationRequired")


def test_expired_and_forged_tokens(probe: Probe) -> None:
    now = int(time.time())
    payload = {
        "scope": "com.atproto.access",
        "sub": probe.did,
        "aud": httpx.get(f"{probe.url}/xrpc/com.atproto.server.describeServer").json()["did"],
        "iat": now - 7200,
        "exp": now - 60,
    }
    expired = HmacSigner(probe.secret).encode(payload, "at+jwt")
    body = {"repo": probe.did, "collection": "app.bsky.feed.post", "record": _post()}
    resp = probe.post(
        "com.atproto.repo.createRecord", json=body, headers={"authorization": f"Bearer {expired}"}
    )
    _expect(resp, 400, "ExpiredToken")
    forged = HmacSigner(b"f" * 32).encode({**payload, "exp": now + 3600}, "at+jwt")
    resp = probe.post(
        "com.atproto.repo.createRecord", json=body, headers={"authorization": f"Bearer {forged}"}
    )
    _expect(resp, 400, "InvalidToken")
    resp = probe.post(
        "com.atproto.repo.createRecord", json=body, headers={"authorization": "Bearer not.a.jwt"}
    )
    _expect(resp, 400, "InvalidToken")
    # A refresh token is not an access token.
    resp = probe.post(
        "com.atproto.repo.createRecord",
        json=body,
        headers={"authorization": f"Bearer {probe.acct['refresh']}"},
    )
    _expect(resp, 400, "InvalidToken")
    resp = httpx.post(f"{probe.url}/xrpc/com.atproto.repo.createRecord", json=body)
    _expect(resp, 401, "AuthenticationRequired")


def test_swap_commit_mismatch(probe: Probe) -> None:
    head = httpx.get(
        f"{probe.url}/xrpc/com.atproto.sync.getLatestCommit", params={"did": probe.did}
    ).json()
    stale = "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"
    assert head["cid"] != stale
    resp = probe.post(
        "com.atproto.repo.createRecord",
        json={
            "repo": probe.did,
            "collection": "app.bsky.feed.post",
            "record": _post(),
            "swapCommit": stale,
        },
    )
    _expect(resp, 400, "InvalidSwap")
    resp = probe.post(
        "com.atproto.repo.applyWrites",
        json={
            "repo": probe.did,
            "swapCommit": stale,
            "writes": [
                {
                    "$type": "com.atproto.repo.applyWrites#create",
                    "collection": "app.bsky.feed.post",
                    "value": _post(),
                }
            ],
        },
    )
    _expect(resp, 400, "InvalidSwap")


def test_writing_to_another_repo(probe: Probe, network: Network) -> None:
    other = network.new_account(0, prefix="oth")
    resp = probe.post(
        "com.atproto.repo.createRecord",
        json={"repo": other["did"], "collection": "app.bsky.feed.post", "record": _post()},
    )
    _expect(resp, 403, "Forbidden")


def test_unknown_and_unproxied_methods(probe: Probe) -> None:
    _expect(httpx.get(f"{probe.url}/xrpc/com.example.nothing"), 501, "MethodNotImplemented")
    resp = httpx.get(f"{probe.url}/xrpc/app.bsky.feed.getTimeline", headers=probe.auth)
    body = _expect(resp, 501, "MethodNotImplemented")
    assert "app view" in body["message"]
    _expect(httpx.get(f"{probe.url}/xrpc/com.atproto.repo.createRecord"), 400, "InvalidRequest")
