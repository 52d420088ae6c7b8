"""The prober against real servers on loopback: a Plaza directory and PDS (with an account
to read), a dead port, and the market's HTTP API that receives the signed samples."""

from __future__ import annotations

import asyncio
import secrets
import socket
from pathlib import Path

import httpx

from plaza.errors import PlazaError
from plaza.ledger import MemoryEventStore
from plaza.market.api import MarketSettings, create_app
from plaza.market.prober import Prober, Sample, Target, probe_target
from plaza.moderation.classifier import Classifier
from plaza.moderation.service import LabelerSettings
from plaza.moderation.service import create_app as create_labeler
from plaza.services.directory import DirectorySettings
from plaza.services.directory import create_app as create_directory
from plaza.services.pds import PdsSettings
from plaza.services.pds import create_app as create_pds
from plaza.services.runner import ServedApp, ServerThread
from tests.market.conftest import GENESIS, HOUR, WINDOW_S, make_world
from tests.market.test_end_to_end import RFB
from tests.market.test_rejections import T_BID


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_prober_probes_real_servers_and_the_market_records_the_samples(tmp_path: Path) -> None:
    dport, pport, mport, dead = _port(), _port(), _port(), _port()
    pds_url = f"http://127.0.0.1:{pport}"
    now = [GENESIS - 6 * HOUR]
    world = make_world(MemoryEventStore())
    m = world.market
    world.register("a", 10, endpoint=pds_url)
    world.register("b", 11, endpoint=f"http://127.0.0.1:{dead}")
    world.register("c", 12, endpoint=f"http://127.0.0.1:{dead}/c")
    for i, name in enumerate(("p1", "p2", "p3")):
        world.register(name, 20 + i, services=("prober",), bond=0)
    m.create_rfb({**RFB, "quantity": 500}, GENESIS - 3 * HOUR)
    m.submit_bid(world.bid("a", "rfb-1", account=4_000_000, quantity=200), T_BID)
    m.submit_bid(world.bid("b", "rfb-1", account=5_000_000, quantity=200), T_BID)
    m.submit_bid(world.bid("c", "rfb-1", account=6_000_000, quantity=200), T_BID)
    _, contracts = m.award("rfb-1", GENESIS - 2 * HOUR)
    for ct in contracts:
        name = next(n for n, p in world.parties.items() if p.did == ct.provider)
        m.sign_contract(
            world.party(name).sign(
                {"$type": "terms", "provider": ct.provider, "market": m.operator_did,
             "contract": ct.id,
                 "terms_digest": ct.terms_digest(), "nonce": f"t-{ct.id}"}
            ),
            GENESIS - HOUR,
        )  # fmt: skip
        m.approve_contract(ct.id, GENESIS - HOUR)
    token = secrets.token_hex(8)
    settings = MarketSettings(
        ledger_url="memory:",
        operator_did=world.operator.did,
        operator_key=world.operator.key,
        mandate=m.mandate,
        admin_token=token,
        clock=lambda: now[0],
    )
    apps = [
        ServedApp(
            "directory",
            create_directory(DirectorySettings.for_data_dir(tmp_path / "d")),
            port=dport,
        ),
        ServedApp(
            "pds",
            create_pds(PdsSettings(data_dir=tmp_path / "pds", public_url=pds_url,
                                   directory_url=f"http://127.0.0.1:{dport}")),
            port=pport,
        ),
        ServedApp("market", create_app(settings, market=m), port=mport),
    ]  # fmt: skip
    with ServerThread(apps) as urls:
        market_url = urls[2]
        r = httpx.post(
            f"{pds_url}/xrpc/com.atproto.server.createAccount",
            json={"handle": "probed.test", "password": "pw-" + secrets.token_hex(6),
                  "email": "probed@example.com"},
            timeout=30,
        )  # fmt: skip
        assert r.status_code == 200, r.text
        hosted = r.json()["did"]

        async def scenario() -> tuple[list[int], list[str]]:
            p1 = world.party("p1")
            prober = Prober(p1.did, p1.key, market_url, timeout_s=2.0, clock=lambda: now[0])
            try:
                async with httpx.AsyncClient() as client:
                    direct = await probe_target(client, Target("x", pds_url, True), 2.0)
                assert direct.ok and hosted in direct.detail
                now[0] = GENESIS + 30_000  # inside window 0 of epoch 0
                samples = await prober.tick()
                assert {s.provider: s.ok for s in samples} == {
                    world.party("a").did: True,
                    world.party("b").did: False,
                    world.party("c").did: False,
                }
                assert await prober.flush() == []  # window 0 is still open
                now[0] = GENESIS + WINDOW_S * 1000 + 1  # window 1
                submitted = await prober.flush()
                return submitted, [s.detail for s in samples]
            finally:
                await prober.aclose()

        submitted, details = asyncio.run(scenario())
    assert submitted == [0]
    book = m.state.probes.samples
    a, b = world.party("a").did, world.party("b").did
    assert book[(a, 0)].up[world.party("p1").did][0] == 1
    assert book[(b, 0)].up[world.party("p1").did][0] == 0
    assert any("ConnectError" in d for d in details)


def _no_classifier() -> Classifier:
    raise PlazaError("this labeler only answers queries")


def test_a_labeler_is_probed_by_reading_its_labels(tmp_path: Path) -> None:
    dport, lport = _port(), _port()
    labeler = create_labeler(
        LabelerSettings(
            data_dir=tmp_path / "labeler",
            public_url=f"http://127.0.0.1:{lport}",
            directory_url=f"http://127.0.0.1:{dport}",
            load_classifier=_no_classifier,
        )
    )
    directory = create_directory(DirectorySettings.for_data_dir(tmp_path / "d"))
    apps = [
        ServedApp("directory", directory, port=dport),
        ServedApp("labeler", labeler, port=lport),
    ]
    with ServerThread(apps) as urls:

        async def probe() -> tuple[Sample, Sample]:
            async with httpx.AsyncClient() as client:
                good = await probe_target(client, Target("lab", urls[1], False, True), 2.0)
                # what is not a labeler is down as one
                bad = await probe_target(client, Target("dir", urls[0], False, True), 2.0)
            return good, bad

        good, bad = asyncio.run(probe())
    assert good.ok and good.detail == "read 0 labels" and good.latency_ms < 2000
    assert not bad.ok
