"""Every route of the directory, fuzzed: no request yields a 5xx, and a refused one (4xx)
changes none of its tables.

The routes come from the running directory app. DIDs in paths are mostly real (an
account's, a genesis registered here) so requests reach the log; bodies are signed PLC
operations, then mutated field by field or byte by byte.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
from hypothesis import event, given
from hypothesis import strategies as st
from starlette.routing import Route

from plaza.atproto.crypto import ES256K, PrivateKey
from plaza.atproto.plc import (
    PlcOperation,
    Service,
    create_genesis,
    create_update,
    did_for_genesis,
    sign_operation,
)
from plaza.errors import PlazaError
from tests.security.conftest import Live, fuzz_settings
from tests.security.strategies import (
    bad_param_values,
    byte_mutations,
    encode_json,
    json_values,
    mostly,
    mutated,
    text,
)

EXAMPLES = 60  # per route


def _genesis(handle: str) -> tuple[str, PlcOperation, PrivateKey]:
    key = PrivateKey.generate(ES256K)
    did, op = create_genesis(
        key=key,
        rotation_keys=[key.did_key()],
        signing_key=key.did_key(),
        handle=handle,
        pds_endpoint="https://pds.test",
    )
    return did, op, key


def _path_dids(live: Live, known: list[str]) -> st.SearchStrategy[str]:
    fresh = st.text("abcdefghijklmnopqrstuvwxyz234567", min_size=24, max_size=24).map(
        lambda s: "did:plc:" + s
    )
    junk = st.one_of(text(1, 40), bad_param_values().filter(bool))
    return mostly(st.sampled_from(known), fresh, junk, share=3)


def _operations(genesis: dict[str, Any], update: dict[str, Any]) -> st.SearchStrategy[bytes]:
    valid = st.sampled_from([genesis, update])
    return mostly(
        valid.map(encode_json),
        mutated(valid).map(encode_json),
        mutated(valid).map(encode_json).flatmap(byte_mutations),
        json_values().map(encode_json),
        share=2,
    )


def test_every_directory_route(live: Live) -> None:
    account = live.new_account("dirfz")
    did, genesis, key = _genesis("dirfz.test")
    r = live.client.post(f"{live.directory}/{did}", json=genesis.to_json())
    assert r.status_code == 200, r.text
    update = create_update(genesis, key, handle="renamed.test").to_json()
    fresh_did, fresh_genesis, _ = _genesis("fresh.test")
    known = [account.did, did, fresh_did]
    routes = [r for r in live.directory_app.routes if isinstance(r, Route)]
    assert {r.path for r in routes} >= {"/{did}", "/export", "/_health"}
    for route in routes:
        for verb in sorted(route.methods or {"GET"}):
            if verb == "HEAD":
                continue
            _fuzz_route(live, route.path, verb, known, _operations(fresh_genesis.to_json(), update))


def _fuzz_route(
    live: Live, path: str, verb: str, known: list[str], bodies: st.SearchStrategy[bytes]
) -> None:
    params = st.lists(
        st.tuples(
            st.sampled_from(["count", "after", "x"]),
            mostly(
                st.integers(0, 2000).map(str),
                st.just("2026-01-01T00:00:00Z"),
                bad_param_values(),
                share=2,
            ),
        ),
        max_size=3,
    )

    @fuzz_settings(EXAMPLES)
    @given(did=_path_dids(live, known), query=params, body=bodies)
    def fuzz(did: str, query: list[tuple[str, str]], body: bytes) -> None:
        url = live.directory + path.replace("{did}", quote(did, safe=":", errors="surrogatepass"))
        # Percent-encoded here, so a lone surrogate reaches the server as the invalid UTF-8
        # it encodes (httpx cannot encode it).
        pairs = [f"{k}={quote(v, safe='', errors='surrogatepass')}" for k, v in query]
        url += "?" + "&".join(pairs) if pairs else ""
        before = live.state()
        content = body if verb == "POST" else None
        r = live.client.request(
            verb, url, content=content, headers={"content-type": "application/json"}
        )
        event(f"{path} {r.status_code}")
        assert r.status_code < 500, f"{verb} {path}: {r.status_code} {r.text[:300]}"
        if r.status_code >= 400:
            assert live.state() == before, f"{verb} {path} refused with {r.status_code}"

    fuzz()


def test_directory_other_paths_and_verbs(live: Live) -> None:
    @fuzz_settings(EXAMPLES)
    @given(
        path=text(0, 60),
        verb=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
        body=json_values().map(encode_json),
    )
    def fuzz(path: str, verb: str, body: bytes) -> None:
        before = live.state()
        try:
            r = live.client.request(
                verb, f"{live.directory}/{quote(path, errors='surrogatepass')}", content=body
            )
        except httpx.InvalidURL:
            return
        assert r.status_code < 500, f"{verb} /{path}: {r.status_code} {r.text[:300]}"
        if r.status_code >= 400:
            assert live.state() == before

    fuzz()


_KEY = PrivateKey.generate(ES256K)


def _hostile_genesis() -> st.SearchStrategy[PlcOperation]:
    """Genesis operations signed by a key they list, every other field arbitrary."""
    short = text(0, 40)
    did_key = mostly(st.just(_KEY.did_key()), short, share=3)
    label = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20)
    aka = mostly(label.map(lambda s: f"at://{s}.test"), short, share=2)
    endpoint = mostly(label.map(lambda s: f"https://{s}.test"), short, share=2)
    return st.builds(
        PlcOperation,
        rotation_keys=mostly(st.just([]), st.lists(short, max_size=2)).map(
            lambda ks: [_KEY.did_key(), *ks]
        ),
        verification_methods=st.dictionaries(mostly(label, short), did_key, max_size=3),
        also_known_as=st.lists(aka, max_size=3),
        services=st.dictionaries(
            mostly(label, short),
            st.builds(Service, type=mostly(label, short), endpoint=endpoint),
            max_size=3,
        ),
        prev=st.none(),
    )


def test_accepted_operations_read_back(live: Live) -> None:
    """A DID whose signed genesis the directory accepted can be read on every route."""

    @fuzz_settings(EXAMPLES)
    @given(op=_hostile_genesis())
    def fuzz(op: PlcOperation) -> None:
        try:
            signed = sign_operation(op, _KEY)
        except PlazaError:
            return  # too large to sign: no directory would see it
        did = did_for_genesis(signed)
        before = live.state()
        r = live.client.post(f"{live.directory}/{did}", json=signed.to_json())
        event(f"genesis {r.status_code}")
        assert r.status_code < 500, f"{r.status_code} {r.text[:300]}"
        if r.status_code >= 400:
            assert live.state() == before
            return
        for path in (did, f"{did}/data", f"{did}/log", f"{did}/log/audit", f"{did}/log/last"):
            r = live.client.get(f"{live.directory}/{path}")
            assert r.status_code < 500, f"GET /{path}: {r.status_code} {r.text[:300]}"
        r = live.client.get(f"{live.directory}/export", params={"count": "1000"})
        assert r.status_code == 200, r.text[:300]

    fuzz()
