"""Every XRPC method the PDS serves, fuzzed from its Lexicon: no input yields a 5xx, and
an input the PDS refuses (4xx) changes none of its tables, its blob folder, or the
directory's tables.

Each method gets its own fresh account, so that what one method's accepted calls do
(deactivating the account, revoking its session) does not blunt another's fuzzing. The
calls carry the credentials the method asks for, and sometimes none or forged ones.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from plaza.atproto import cbor
from plaza.atproto.car import car_chunks
from plaza.services.pds.app import METHODS
from plaza.services.pds.auth import Auth
from plaza.services.pds.lexicons import plaza_registry
from plaza.services.pds.xrpc import Method
from tests.security.conftest import ADMIN_PASSWORD, Account, Live, fuzz_settings
from tests.security.strategies import (
    Bodies,
    Hints,
    bad_param_values,
    byte_mutations,
    cids,
    json_bodies,
    json_objects,
    mostly,
    mutated_params,
    text,
)

EXAMPLES = 30  # per method; see tests/security/conftest.py for longer runs
POST = "app.bsky.feed.post"
JSON = "application/json"


def test_the_fuzzed_methods_are_the_dispatchers_table(live: Live) -> None:
    """The methods below are every method the running PDS's dispatcher serves."""
    served = live.pds_app.state.pds.meter.methods
    assert served == {m.nsid for m in METHODS}
    assert all(m.nsid in plaza_registry() for m in METHODS)


def _hints(live: Live, acct: Account) -> Hints:
    """The account's DID and handle, and one post of theirs, as values to aim at."""
    r = live.client.post(
        f"{live.pds}/xrpc/com.atproto.repo.createRecord",
        json={
            "repo": acct.did,
            "collection": POST,
            "record": {"$type": POST, "text": "hello", "createdAt": "2026-01-01T00:00:00.000Z"},
        },
        headers={"authorization": f"Bearer {acct.access}"},
    )
    assert r.status_code == 200, r.text
    uri, cid = r.json()["uri"], r.json()["cid"]
    hints = Hints(collections=[POST, "app.bsky.feed.like", "app.bsky.actor.profile"])
    hints.add("did", acct.did)
    hints.add("handle", acct.handle)
    hints.add("at-identifier", acct.did, acct.handle)
    hints.add("nsid", POST, "app.bsky.actor.profile")
    hints.add("record-key", uri.rsplit("/", 1)[1], "self")
    hints.add("tid", uri.rsplit("/", 1)[1])
    hints.add("cid", cid)
    hints.add("at-uri", uri)
    hints.add("datetime", "2026-01-01T00:00:00.000Z")
    return hints


def _auth(method: Method, acct: Account) -> st.SearchStrategy[dict[str, str]]:
    proper: dict[str, str] = {}
    if method.auth in (Auth.OPTIONAL, Auth.ACCESS, Auth.PRIVILEGED, Auth.FULL):
        proper = {"authorization": f"Bearer {acct.access}"}
    elif method.auth is Auth.REFRESH:
        proper = {"authorization": f"Bearer {acct.refresh}"}
    elif method.auth is Auth.ADMIN:
        basic = base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()
        proper = {"authorization": f"Basic {basic}"}
    forged = st.sampled_from(
        [
            {"authorization": "Bearer " + acct.access[:-4] + "AAAA"},
            {"authorization": "Bearer x.y.z"},
            {"authorization": "Basic " + base64.b64encode(b"admin:nope").decode()},
            {"authorization": "Bearer"},
        ]
    )
    return mostly(st.just(proper), forged | st.just({}))


def _raw_body(live: Live, method: Method, acct: Account) -> st.SearchStrategy[tuple[bytes, str]]:
    """Bodies of the methods that read raw bytes: blobs and repository CARs."""
    if method.nsid == "com.atproto.repo.uploadBlob":
        types = st.sampled_from(["", "image/png", "*/*", "text/plain; charset=utf-8", "x" * 5000])
        return st.tuples(st.binary(max_size=2000) | st.just(b"\x89PNG\r\n" * 20), types)
    car = live.repo_car(acct.did)
    blocks = st.lists(st.tuples(cids(), st.binary(max_size=64)), max_size=4)
    forged = st.tuples(st.lists(cids(), min_size=1, max_size=2), blocks).map(
        lambda t: b"".join(car_chunks(t[0], t[1]))
    )
    cars = st.one_of(st.just(car), byte_mutations(car), forged, st.binary(max_size=300))
    return st.tuples(cars, st.sampled_from(["application/vnd.ipld.car", "", "text/plain"]))


def _outcome(r: httpx.Response) -> str:
    """The status and XRPC error name (``--hypothesis-show-statistics`` counts them)."""
    try:
        error = r.json().get("error", "")
    except ValueError:
        error = ""
    return f"{r.status_code} {error}".strip()


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.nsid)
def test_no_input_yields_5xx_or_a_change_when_refused(live: Live, method: Method) -> None:
    acct = live.account_for(method.nsid)
    bodies = Bodies(plaza_registry(), _hints(live, acct))
    url = f"{live.pds}/xrpc/{method.nsid}"
    params = mutated_params(bodies.params(method.nsid))
    if method.body == "raw":
        payload = _raw_body(live, method, acct)
    elif method.kind == "procedure":
        valid = bodies.input_body(method.nsid)
        payload = st.tuples(json_bodies(valid), mostly(st.just(JSON), st.just("text/x")))
    else:
        payload = st.just((b"", ""))

    @fuzz_settings(EXAMPLES)
    @given(auth=_auth(method, acct), query=params, body=payload)
    def fuzz(auth: dict[str, str], query: list[tuple[str, str]], body: tuple[bytes, str]) -> None:
        headers = dict(auth)
        if body[1]:
            headers["content-type"] = body[1]
        verb = "POST" if method.kind == "procedure" else "GET"
        before = live.state()
        r = live.client.request(verb, url, params=query, content=body[0], headers=headers)
        event(_outcome(r))
        assert r.status_code < 500, f"{r.status_code} {r.text[:300]}"
        if r.status_code >= 400:
            assert live.state() == before, f"refused with {r.status_code} {r.text[:300]}"

    fuzz()


@fuzz_settings(EXAMPLES)
@given(body=json_objects(), verb=st.sampled_from(["GET", "POST"]), name=text(1, 60))
def test_unknown_methods_and_verbs_are_refused(
    live: Live, body: dict[str, Any], verb: str, name: str
) -> None:
    before = live.state()
    r = live.client.request(verb, f"{live.pds}/xrpc/{quote(name, safe='')}", json=body)
    if r.status_code == 501:  # what XRPC answers for a method the server does not serve
        assert r.json()["error"] == "MethodNotImplemented"
        return
    assert r.status_code < 500, f"{r.status_code} {r.text[:300]}"
    if r.status_code >= 400:
        assert live.state() == before


@fuzz_settings(EXAMPLES)
@given(cursor=st.one_of(bad_param_values(), st.integers(0, 2**70).map(str)))
def test_firehose_cursors(live: Live, cursor: str) -> None:
    """``subscribeRepos?cursor=``: an error frame or events, never a failed upgrade."""
    ws_url = live.pds.replace("http://", "ws://") + "/xrpc/com.atproto.sync.subscribeRepos"
    try:
        with connect(ws_url + "?" + urlencode({"cursor": cursor}), open_timeout=10) as ws:
            try:
                frame = ws.recv(timeout=0.05)
            except (TimeoutError, ConnectionClosed):
                return
            assert isinstance(frame, bytes)
            header = next(cbor.decode_multi(frame))
            assert header["op"] in (1, -1), header
    except InvalidStatus as exc:
        assert exc.response.status_code < 500, exc.response.status_code
