"""Forwarded calls (``atproto-proxy``) cannot aim the PDS at private places.

A DID document anyone can write names an "internal" service on loopback (a real server
that counts its visitors), an https name that resolves to loopback, and the cloud
metadata address. A PDS with default settings refuses anonymous callers and every one
of those targets; a PDS told to allow private targets (as ``plaza up`` and tests do)
reaches the loopback service, in the caller's name, within its size and time bounds.
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from plaza.atproto.crypto import ES256K, PrivateKey
from plaza.atproto.plc.operations import (
    PlcOperation,
    Service,
    did_for_genesis,
    sign_operation,
)
from plaza.services.directory import DirectorySettings
from plaza.services.directory import create_app as create_directory
from plaza.services.pds import PdsSettings, create_app, jwt
from plaza.services.runner import ServedApp, ServerThread

MAX_RESPONSE = 100_000
MAX_BODY = 50_000


@dataclass
class Internal:
    """A service that should never be reached from outside: it notes every visit."""

    hits: list[dict[str, Any]] = field(default_factory=list)
    # getSlow answers only once the test sets this, after it has the PDS's answer
    release: threading.Event = field(default_factory=threading.Event)
    answered_slow: bool = False

    def app(self) -> Starlette:
        async def xrpc(request: Request) -> Response:
            body = await request.body()
            nsid = request.path_params["nsid"]
            self.hits.append(
                {"nsid": nsid, "auth": request.headers.get("authorization"), "size": len(body)}
            )
            if nsid == "app.bsky.feed.getBig":
                return Response(b"x" * (3 * MAX_RESPONSE), media_type="application/octet-stream")
            if nsid == "app.bsky.graph.muteActor":  # a procedure without output
                return Response(b"", status_code=200)
            if nsid == "app.bsky.feed.getSlow":
                await asyncio.to_thread(self.release.wait, 60)
                self.answered_slow = True
            return JSONResponse({"ok": True, "secret": "internal data"})

        return Starlette(routes=[Route("/xrpc/{nsid}", xrpc, methods=["GET", "POST"])])


@dataclass
class Net:
    directory: str
    strict: str
    open: str
    internal: Internal
    internal_url: str
    target: str  # the DID whose document names the internal service

    def account(self, pds: str) -> dict[str, str]:
        handle = f"p{secrets.token_hex(4)}.test"
        r = httpx.post(
            f"{pds}/xrpc/com.atproto.server.createAccount",
            json={"handle": handle, "password": "pw-12345678"},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        body: dict[str, str] = r.json()
        return body


def _register_target(directory: str, services: dict[str, str]) -> str:
    key = PrivateKey.generate(ES256K)
    op = sign_operation(
        PlcOperation(
            rotation_keys=(key.did_key(),),
            verification_methods={"atproto": key.did_key()},
            also_known_as=("at://target.test",),
            services={
                name: Service("AtprotoAppView", endpoint) for name, endpoint in services.items()
            },
            prev=None,
        ),
        key,
    )
    did = did_for_genesis(op)
    r = httpx.post(f"{directory}/{did}", json=op.to_json())
    assert r.status_code == 200, r.text
    return did


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    root: Path = tmp_path_factory.mktemp("proxy")
    internal = Internal()
    first = [
        ServedApp("directory", create_directory(DirectorySettings.for_data_dir(root / "d"))),
        ServedApp("internal", internal.app()),
    ]
    with ServerThread(first) as (directory, internal_url):
        port = internal_url.rsplit(":", 1)[1]
        target = _register_target(
            directory,
            {
                "bsky_fg": internal_url,
                "secure": f"https://localhost:{port}",
                "meta": "https://169.254.169.254",
                "plain": "http://example.com",
            },
        )
        strict = create_app(
            PdsSettings(
                data_dir=root / "strict", public_url="http://127.0.0.1:1", directory_url=directory
            )
        )
        opened = create_app(
            PdsSettings(
                data_dir=root / "open",
                public_url="http://127.0.0.1:2",
                directory_url=directory,
                proxy_allow_private=True,
                proxy_timeout_s=1.5,
                proxy_max_response_bytes=MAX_RESPONSE,
                max_json_bytes=MAX_BODY,
            )
        )
        with ServerThread([ServedApp("strict", strict), ServedApp("open", opened)]) as urls:
            yield Net(directory, urls[0], urls[1], internal, internal_url, target)


def _get(pds: str, nsid: str, token: str | None, proxy: str) -> httpx.Response:
    headers = {"atproto-proxy": proxy}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return httpx.get(f"{pds}/xrpc/{nsid}", headers=headers, timeout=30)


@pytest.mark.parametrize("which", ["strict", "open"])
def test_anonymous_callers_are_not_forwarded(net: Net, which: str) -> None:
    before = len(net.internal.hits)
    pds = net.strict if which == "strict" else net.open
    r = _get(pds, "app.bsky.feed.getFeedSkeleton", None, f"{net.target}#bsky_fg")
    assert r.status_code == 401 and r.json()["error"] == "AuthenticationRequired", r.text
    assert len(net.internal.hits) == before
    assert b"internal data" not in r.content


@pytest.mark.parametrize("service", ["bsky_fg", "secure", "meta", "plain"])
def test_private_and_plain_http_targets_are_refused(net: Net, service: str) -> None:
    acct = net.account(net.strict)
    before = len(net.internal.hits)
    r = _get(
        net.strict, "app.bsky.feed.getFeedSkeleton", acct["accessJwt"], f"{net.target}#{service}"
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "InvalidRequest"
    assert len(net.internal.hits) == before


def test_an_allowed_target_gets_the_call_in_the_callers_name(net: Net) -> None:
    acct = net.account(net.open)
    r = _get(net.open, "app.bsky.feed.getFeedSkeleton", acct["accessJwt"], f"{net.target}#bsky_fg")
    assert r.status_code == 200, r.text
    assert r.json()["ok"] is True
    auth = net.internal.hits[-1]["auth"]
    assert auth is not None and auth.startswith("Bearer ")
    claims = jwt.parse(auth[7:]).payload
    assert claims["iss"] == acct["did"] and claims["aud"] == net.target
    assert claims["lxm"] == "app.bsky.feed.getFeedSkeleton"
    assert claims["exp"] - claims["iat"] <= 60


def test_an_empty_output_is_relayed_without_a_content_type(net: Net) -> None:
    acct = net.account(net.open)
    r = httpx.post(
        f"{net.open}/xrpc/app.bsky.graph.muteActor",
        json={"actor": acct["did"]},
        headers={
            "atproto-proxy": f"{net.target}#bsky_fg",
            "authorization": f"Bearer {acct['accessJwt']}",
        },
        timeout=30,
    )
    assert r.status_code == 200 and r.content == b""
    assert "content-type" not in r.headers  # clients parse a JSON type as a JSON body


def test_a_response_past_the_limit_is_not_relayed(net: Net) -> None:
    acct = net.account(net.open)
    r = _get(net.open, "app.bsky.feed.getBig", acct["accessJwt"], f"{net.target}#bsky_fg")
    assert r.status_code == 502 and r.json()["error"] == "UpstreamFailure", r.status_code
    assert len(r.content) < MAX_RESPONSE


def test_a_slow_target_times_out(net: Net) -> None:
    """The target answers only after the test has the PDS's answer: the PDS gives up at
    its own deadline (1.5 s here) instead of waiting for the target."""
    acct = net.account(net.open)
    try:
        r = _get(net.open, "app.bsky.feed.getSlow", acct["accessJwt"], f"{net.target}#bsky_fg")
        assert not net.internal.answered_slow
    finally:
        net.internal.release.set()
    assert r.status_code == 502 and r.json()["error"] == "UpstreamFailure", r.text
    assert r.json()["message"] == "proxy target did not answer within 1.5 s"


def test_a_request_body_past_the_limit_is_not_forwarded(net: Net) -> None:
    acct = net.account(net.open)
    before = len(net.internal.hits)

    def chunks() -> Iterator[bytes]:  # no Content-Length: refused while it streams
        for _ in range(20):
            yield b" " * 10_000

    r = httpx.post(
        f"{net.open}/xrpc/app.bsky.feed.sendInteractions",
        content=chunks(),
        headers={
            "authorization": f"Bearer {acct['accessJwt']}",
            "atproto-proxy": f"{net.target}#bsky_fg",
            "content-type": "application/json",
        },
        timeout=30,
    )
    assert r.status_code == 413 and r.json()["error"] == "PayloadTooLarge", r.text
    assert len(net.internal.hits) == before


def test_preferences_stay_here_whatever_the_proxy_header(net: Net) -> None:
    acct = net.account(net.open)
    before = len(net.internal.hits)
    headers = {
        "authorization": f"Bearer {acct['accessJwt']}",
        "atproto-proxy": f"{net.target}#bsky_fg",
    }
    prefs = [{"$type": "app.bsky.actor.defs#adultContentPref", "enabled": False}]
    r = httpx.post(
        f"{net.open}/xrpc/app.bsky.actor.putPreferences",
        json={"preferences": prefs},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    got = httpx.get(f"{net.open}/xrpc/app.bsky.actor.getPreferences", headers=headers)
    assert got.json() == {"preferences": prefs}
    assert len(net.internal.hits) == before


@pytest.mark.parametrize(
    "header",
    ["did:plc:abc/../../export#bsky_fg", "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa#a/b", "not-a-did#x"],
    ids=["path-in-did", "path-in-service", "not-a-did"],
)
def test_a_malformed_proxy_header_is_refused(net: Net, header: str) -> None:
    acct = net.account(net.strict)
    r = _get(net.strict, "app.bsky.feed.getFeedSkeleton", acct["accessJwt"], header)
    assert r.status_code == 400 and r.json()["error"] == "InvalidRequest", r.text


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:169.254.169.254", False),
        ("64:ff9b::a9fe:a9fe", False),
        ("::", False),
    ],
)
def test_public_addresses(address: str, public: bool) -> None:
    from plaza.services.pds.proxy import is_public_address

    assert is_public_address(ipaddress.ip_address(address)) is public


def test_destinations_by_settings(tmp_path: Path) -> None:
    from plaza.services.pds.proxy import ProxyDestinationError, destination

    base = PdsSettings(data_dir=tmp_path, public_url="http://127.0.0.1:1", directory_url="-")
    assert destination("https://feed.example.com", base).trusted is False
    for bad in ("http://feed.example.com", "ftp://x.example", "https://u:p@x.example", "https://"):
        with pytest.raises(ProxyDestinationError):
            destination(bad, base)
    appview = PdsSettings(
        data_dir=tmp_path,
        public_url="http://127.0.0.1:1",
        directory_url="-",
        appview_url="http://127.0.0.1:9000",
        proxy_allowed_origins=("http://10.0.0.5:8080",),
    )
    assert destination("http://127.0.0.1:9000/", appview).trusted is True
    assert destination("http://10.0.0.5:8080", appview).trusted is True
    with pytest.raises(ProxyDestinationError):
        destination("http://10.0.0.5:8081", appview)


@pytest.mark.parametrize("privileged", [False, True], ids=["app-password", "privileged"])
def test_chat_needs_a_privileged_session(net: Net, privileged: bool) -> None:
    acct = net.account(net.open)
    made = httpx.post(
        f"{net.open}/xrpc/com.atproto.server.createAppPassword",
        json={"name": "chat", "privileged": privileged},
        headers={"authorization": f"Bearer {acct['accessJwt']}"},
    ).json()
    session = httpx.post(
        f"{net.open}/xrpc/com.atproto.server.createSession",
        json={"identifier": acct["handle"], "password": made["password"]},
    ).json()
    before = len(net.internal.hits)
    r = _get(net.open, "chat.bsky.convo.listConvos", session["accessJwt"], f"{net.target}#bsky_fg")
    if privileged:
        assert r.status_code == 200 and len(net.internal.hits) == before + 1, r.text
    else:
        assert r.status_code == 403 and r.json()["error"] == "Forbidden", r.text
        assert len(net.internal.hits) == before
