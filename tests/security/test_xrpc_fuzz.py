"""Every XRPC method the PDS serves, fuzzed from its Lexicon: no input yields a 5xx, and
an input the PDS refuses (4xx) changes none of its tables, its blob folder, or the
directory's tables.

Each method gets its own fresh account, so that what one method's accepted calls do
(deactivating the account, revoking its session) does not blunt another's fuzzing. The
calls carry the credentials the method asks for, and sometimes none or forged ones.
"""

from __future__ import annotations

import base64
import secrets
import time
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from plaza.atproto import cbor
from plaza.atproto.car import car_chunks, write_car
from plaza.atproto.repo import Repo, Write
from plaza.atproto.tid import encode_tid
from plaza.services.pds.app import METHODS
from plaza.services.pds.auth import Auth
from plaza.services.pds.lexicons import plaza_registry
from plaza.services.pds.mail import read_token
from plaza.services.pds.xrpc import Method
from tests.atproto.strategies import KEYS, values
from tests.security.conftest import ADMIN_PASSWORD, Account, Live, fuzz_settings
from tests.security.strategies import (
    Bodies,
    Hints,
    bad_param_values,
    byte_mutations,
    cids,
    encode_json,
    json_bodies,
    json_objects,
    mostly,
    mutated_params,
    nsids,
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


# Methods that need a token the PDS mails: the request that mails it, and its purpose.
_MAILED = {
    "com.atproto.server.deleteAccount": ("requestAccountDelete", "delete_account"),
    "com.atproto.identity.signPlcOperation": ("requestPlcOperationSignature", "plc_operation"),
}


def _mailed_token(live: Live, acct: Account, nsid: str) -> list[str]:
    """The confirmation token ``nsid`` needs, requested and read from the outbox."""
    if nsid not in _MAILED:
        return []
    request, purpose = _MAILED[nsid]
    auth = {"authorization": f"Bearer {acct.access}"}
    r = live.client.post(
        f"{live.pds}/xrpc/com.atproto.{nsid.split('.')[2]}.{request}", headers=auth
    )
    assert r.status_code == 200, r.text
    token = read_token(live.pds_mail, acct.did, purpose)
    assert token is not None
    return [token]


def _hints(live: Live, acct: Account, nsid: str) -> Hints:
    """The account's DID, handle, password and one post of theirs, and the mailed token
    ``nsid`` needs, as values to aim at."""
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
    hints.by_name.update(
        identifier=[acct.handle, acct.did],
        password=[acct.password, "pw-" + secrets.token_hex(8)],
        email=[f"{secrets.token_hex(4)}@example.com"],
        handle=[f"fz{secrets.token_hex(4)}.test", acct.handle, live.account_for("other").handle],
    )
    if token := _mailed_token(live, acct, nsid):
        hints.by_name["token"] = token
    return hints


def _read_back(live: Live, acct: Account) -> None:
    """After an accepted call, reading the account back answers without a 5xx."""
    auth = {"authorization": f"Bearer {acct.access}"}
    reads: list[tuple[str, dict[str, str]]] = [
        ("app.bsky.actor.getPreferences", {}),
        ("com.atproto.repo.describeRepo", {"repo": acct.did}),
        ("com.atproto.sync.getRepo", {"did": acct.did}),
        ("com.atproto.sync.getLatestCommit", {"did": acct.did}),
        ("com.atproto.server.getSession", {}),
        ("app.bsky.actor.getProfile", {"actor": acct.did}),
    ]
    r = live.client.get(f"{live.pds}/xrpc/com.atproto.repo.describeRepo", params={"repo": acct.did})
    if r.status_code == 200:
        for collection in r.json().get("collections", []):
            reads.append(
                ("com.atproto.repo.listRecords", {"repo": acct.did, "collection": collection})
            )
    for nsid, params in reads:
        r = live.client.get(f"{live.pds}/xrpc/{nsid}", params=params, headers=auth)
        assert r.status_code < 500, f"read back {nsid}: {r.status_code} {r.text[:300]}"


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


def _raw_query(method: Method) -> st.SearchStrategy[str]:
    """Mostly nothing; else a parameter whose percent-escapes are not UTF-8."""
    main = plaza_registry().get_def(method.nsid)
    names = sorted((main.get("parameters") or {}).get("properties", {})) or ["x"]
    bad = st.sampled_from(["%FF", "%ED%A0%80", "%C0%AF", "%00", "%E2%82", "a%"])
    pairs = st.tuples(st.sampled_from(names), bad).map(lambda t: f"{t[0]}={t[1]}")
    return mostly(st.just(""), pairs, share=4)


def _extra_headers(acct: Account) -> st.SearchStrategy[dict[str, str]]:
    """Mostly none; else an ``atproto-proxy`` target (real, unknown or malformed)."""
    targets = st.one_of(
        st.sampled_from(
            [
                f"{acct.did}#atproto_appview",
                "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa#atproto_appview",
                "did:web:example.test#atproto_appview",
                "did:web:127.0.0.1#x",
                "#",
                "did:plc:" + "a" * 5000 + "#x",
            ]
        ),
        st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60),
    )
    # h11 refuses to send a header value with whitespace at either end
    return mostly(st.just({}), targets.map(lambda t: {"atproto-proxy": t.strip() or "x"}), share=4)


def _raw_body(live: Live, method: Method, acct: Account) -> st.SearchStrategy[tuple[bytes, str]]:
    """Bodies of the methods that read raw bytes: blobs and repository CARs."""
    if method.nsid == "com.atproto.repo.uploadBlob":
        types = st.sampled_from(["", "image/png", "*/*", "text/plain; charset=utf-8", "x" * 5000])
        blobs = st.one_of(
            st.binary(max_size=2000),
            st.just(b"\x89PNG\r\n" * 20),
            st.just(b"x" * 150_000),  # past max_blob_bytes: refused, nothing left on disk
        )
        return st.tuples(blobs, types)
    car = live.repo_car(acct.did)
    blocks = st.lists(st.tuples(cids(), st.binary(max_size=64)), max_size=4)
    forged = st.tuples(st.lists(cids(), min_size=1, max_size=2), blocks).map(
        lambda t: b"".join(car_chunks(t[0], t[1]))
    )
    cars = st.one_of(
        st.just(car), byte_mutations(car), forged, st.binary(max_size=300), _signed_cars(live, acct)
    )
    return st.tuples(
        cars, mostly(st.just("application/vnd.ipld.car"), st.sampled_from(["", "text/plain"]))
    )


def _outcome(r: httpx.Response) -> str:
    """The status and XRPC error name (``--hypothesis-show-statistics`` counts them)."""
    try:
        error = r.json().get("error", "")
    except ValueError:
        error = ""
    return f"{r.status_code} {error}".strip()


def _signed_cars(live: Live, acct: Account) -> st.SearchStrategy[bytes]:
    """Repositories signed with the account's own key (an account holding its key can
    build any), holding arbitrary data-model records under arbitrary collections."""
    key = live.signing_key(acct.did)
    collection = st.one_of(st.sampled_from([POST, "app.bsky.actor.profile"]), nsids())
    rkey = mostly(
        st.text(_RKEY_CHARS, min_size=1, max_size=20).filter(lambda k: k not in (".", "..")),
        st.just("self"),  # where getProfile looks
        share=2,
    )
    record = st.tuples(collection, st.dictionaries(KEYS, values(), max_size=4)).map(
        lambda t: (t[0], {**t[1], "$type": t[0]})
    )

    def build(records: list[tuple[str, str, dict[str, Any]]]) -> bytes:
        writes = {(c, k): Write.create(c, k, v) for c, k, v in records}
        rev = encode_tid(int(time.time() * 1_000_000), 0)
        result = Repo.create(acct.did, key, rev, writes=writes.values())
        return write_car([result.cid], result.new_blocks.items())

    return st.lists(st.tuples(record, rkey), max_size=6).map(
        lambda rs: build([(c, k, v) for (c, v), k in rs])
    )


_RKEY_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:~"


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.nsid)
def test_no_input_yields_5xx_or_a_change_when_refused(live: Live, method: Method) -> None:
    acct = live.account_for(method.nsid)
    bodies = Bodies(plaza_registry(), _hints(live, acct, method.nsid))
    url = f"{live.pds}/xrpc/{method.nsid}"
    params = mutated_params(bodies.params(method.nsid))
    if method.body == "raw":
        payload = _raw_body(live, method, acct)
    elif method.kind == "procedure":
        valid = bodies.input_body(method.nsid)
        payload = st.tuples(json_bodies(valid), mostly(st.just(JSON), st.just("text/x")))
    else:
        payload = st.just((b"", ""))

    usual_verb = "POST" if method.kind == "procedure" else "GET"
    verbs = mostly(st.just(usual_verb), st.sampled_from(["GET", "HEAD", "POST", "PUT"]))

    @fuzz_settings(EXAMPLES)
    @given(
        auth=_auth(method, acct),
        query=params,
        body=payload,
        verb=verbs,
        extra=_extra_headers(acct),
        raw=_raw_query(method),
    )
    def fuzz(
        *,
        auth: dict[str, str],
        query: list[tuple[str, str]],
        body: tuple[bytes, str],
        verb: str,
        extra: dict[str, str],
        raw: str,
    ) -> None:
        headers = {**extra, **auth}
        if body[1]:
            headers["content-type"] = body[1]
        before = live.state()
        # surrogatepass: a lone surrogate goes out as its WTF-8 bytes, percent-encoded
        qs = "&".join(p for p in (urlencode(query, errors="surrogatepass"), raw) if p)
        target = f"{url}?{qs}" if qs else url
        r = live.client.request(verb, target, content=body[0], headers=headers)
        event(_outcome(r))
        assert r.status_code < 500, f"{r.status_code} {r.text[:300]}"
        if r.status_code >= 400:
            assert live.state() == before, f"refused with {r.status_code} {r.text[:300]}"
        elif method.kind == "procedure":
            _read_back(live, acct)

    fuzz()


@fuzz_settings(EXAMPLES)
@given(body=json_objects(), verb=st.sampled_from(["GET", "POST"]), name=text(1, 60))
def test_unknown_methods_and_verbs_are_refused(
    live: Live, body: dict[str, Any], verb: str, name: str
) -> None:
    before = live.state()
    name = quote(name, safe="", errors="surrogatepass")
    r = live.client.request(
        verb, f"{live.pds}/xrpc/{name}", content=encode_json(body), headers={"content-type": JSON}
    )
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
        with connect(
            ws_url + "?" + urlencode({"cursor": cursor}, errors="surrogatepass"), open_timeout=10
        ) as ws:
            try:
                frame = ws.recv(timeout=0.05)
            except (TimeoutError, ConnectionClosed):
                return
            assert isinstance(frame, bytes)
            header = next(cbor.decode_multi(frame))
            assert header["op"] in (1, -1), header
    except InvalidStatus as exc:
        assert exc.response.status_code < 500, exc.response.status_code
