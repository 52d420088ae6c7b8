"""Any parameters, any body: the relay's XRPC methods answer with a named error or a
result, never a server error, and a refused request changes nothing."""

from __future__ import annotations

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.services.relay.conftest import Net

QUERIES = [
    ("com.atproto.sync.listHosts", ["limit", "cursor"]),
    ("com.atproto.sync.getHostStatus", ["hostname"]),
    ("com.atproto.sync.listRepos", ["limit", "cursor"]),
    ("com.atproto.sync.getRepoStatus", ["did"]),
    ("com.atproto.sync.getLatestCommit", ["did"]),
]

_text = st.text(max_size=40) | st.sampled_from(["0", "1001", "-1", "did:plc:", "a" * 300])


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    method=st.sampled_from(QUERIES),
    values=st.lists(_text, min_size=0, max_size=2),
)
def test_queries_never_fail_the_server(
    net: Net, method: tuple[str, list[str]], values: list[str]
) -> None:
    nsid, names = method
    params = dict(zip(names, values, strict=False))
    r = httpx.get(f"{net.relay}/xrpc/{nsid}", params=params, timeout=30)
    assert r.status_code in (200, 400), r.text
    if r.status_code == 400:
        body = r.json()
        assert body["error"] and body["message"]


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=_json | st.fixed_dictionaries({"hostname": _json.filter(lambda v: not isinstance(v, str))})
)
def test_request_crawl_refuses_bodies_that_name_no_host(net: Net, body: object) -> None:
    before = net.xrpc("com.atproto.sync.listHosts").json()
    r = httpx.post(f"{net.relay}/xrpc/com.atproto.sync.requestCrawl", json=body, timeout=30)
    assert r.status_code == 400, r.text
    assert net.xrpc("com.atproto.sync.listHosts").json() == before


def test_raw_bodies_are_refused(net: Net) -> None:
    url = f"{net.relay}/xrpc/com.atproto.sync.requestCrawl"
    for content in (b"", b"{", b'"x"', b'{"hostname": "\\ud800"}', b"[" * 10_000, b"x" * 20_000):
        r = httpx.post(url, content=content, headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.json()["error"], (content[:20], r.text)
