"""The entryway against a live network, with the atproto SDK as the member's client:
members sign up choosing no host (the agents place them, every placement in the ledger
with its reason), their DID lists [their own key, the DAO agent's, the host's], they
sign in at the entryway and continue at their host; and after the host dies and the
agents restore the account from the archive, the same handle and password land on the
new host."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from atproto import Client, models
from plaza.agents.credentials import EntrywayCredentials
from plaza.agents.runner import run_once
from plaza.agents.settlement import SettlementDesired
from plaza.atproto.crypto import PrivateKey, parse_private_key
from plaza.cli import app as cli
from plaza.ledger import verify_log
from plaza.services.pds.lexicons import plaza_registry
from tests.agents.test_live import AGENT, GENESIS, _records
from tests.network.entryway.conftest import Network, agent_actions, entryway, host_of
from tests.services.archive.conftest import holds, wait_for

JS = Path(__file__).resolve().parents[2] / "js"


def _signup(url: str, handle: str, password: str, **extra: Any) -> Any:
    return Client(base_url=url).com.atproto.server.create_account(
        models.ComAtprotoServerCreateAccount.Data(
            handle=handle, password=password, email=f"{handle}@example.com", **extra
        )
    )


def _handle() -> str:
    return f"e{secrets.token_hex(4)}.test"


def _post(client: Client, text: str) -> str:
    return str(client.send_post(text).uri)


def test_sign_up_and_in_through_the_entryway(network: Network, db_url: str) -> None:
    with entryway(network, db_url=db_url) as (url, _):
        # describeServer names the entryway, not a host.
        described = httpx.get(f"{url}/xrpc/com.atproto.server.describeServer").json()
        assert described["did"].startswith("did:web:127.0.0.1")
        assert described["availableUserDomains"] == [".test"]

        # 1. Two sign-ups through the SDK: nobody names a host; one brings their own key.
        own = PrivateKey.generate("ES256K")
        alice, bob = _handle(), _handle()
        made = _signup(url, alice, "alice's password", recovery_key=own.did_key())
        plain = _signup(url, bob, "bob's password")
        assert made.handle == alice and made.did.startswith("did:plc:")
        # The answer is the host's session, with the DID document naming the host.
        doc_host = made.did_doc["service"][0]["serviceEndpoint"]
        assert doc_host in network.pds
        assert {host_of(network, made.did), host_of(network, plain.did)} == set(network.pds)

        # Rotation keys: [member, DAO agent, host] and [DAO agent, host].
        dao_key = AGENT.key.did_key()
        keys = network.hosting.did_data(made.did)["rotationKeys"]
        assert keys[:2] == [own.did_key(), dao_key] and len(keys) == 3
        keys = network.hosting.did_data(plain.did)["rotationKeys"]
        assert keys[0] == dao_key and len(keys) == 2

        # Each placement went through the guard and is in the ledger with its reason.
        placed = agent_actions(network.market, "placement.assign")
        assert len(placed) == 2
        assert all(a["outcome"] == "executed" and a["verdict"] == "allow" for a in placed)
        assert all(a["reason"]["rule"] == "placement.water-fill" for a in placed)
        assert made.did in placed[0]["detail"] and plain.did in placed[1]["detail"]

        # 2. Sign-in at the entryway; the SDK continues at the host and posts there.
        client = Client(base_url=url)
        client.login(alice, "alice's password")
        uri = _post(client, "hello through the entryway")
        host = host_of(network, made.did)
        assert uri in {r["uri"] for r in _records(host, made.did)}
        # By DID and by email too; getSession and refreshSession reach the host.
        for ident in (made.did, f"{alice}@example.com"):
            r = httpx.post(
                f"{url}/xrpc/com.atproto.server.createSession",
                json={"identifier": ident, "password": "alice's password"},
            )
            assert r.status_code == 200 and r.json()["did"] == made.did, r.text
        tokens = r.json()
        got = httpx.get(
            f"{url}/xrpc/com.atproto.server.getSession",
            headers={"authorization": f"Bearer {tokens['accessJwt']}"},
        )
        assert got.status_code == 200 and got.json()["handle"] == alice
        fresh = httpx.post(
            f"{url}/xrpc/com.atproto.server.refreshSession",
            headers={"authorization": f"Bearer {tokens['refreshJwt']}"},
        )
        assert fresh.status_code == 200 and fresh.json()["did"] == made.did

        # 3. Refusals in Lexicon style, and nothing changes.
        wrong = httpx.post(
            f"{url}/xrpc/com.atproto.server.createSession",
            json={"identifier": alice, "password": "not the password"},
        )
        assert (wrong.status_code, wrong.json()["error"]) == (401, "AuthenticationRequired")
        nobody = httpx.post(
            f"{url}/xrpc/com.atproto.server.createSession",
            json={"identifier": "nobody.test", "password": "not the password"},
        )
        assert nobody.json() == wrong.json()
        for body, code in (
            ({"handle": alice, "password": "another password"}, "HandleNotAvailable"),
            ({"handle": "bad handle", "password": "a password"}, "InvalidHandle"),
            ({"handle": "x.elsewhere.com", "password": "a password"}, "InvalidHandle"),
            ({"handle": _handle(), "password": "short"}, "InvalidRequest"),
            ({"handle": _handle(), "password": "a password", "recoveryKey": "k"}, "InvalidRequest"),
            ({"handle": _handle(), "password": "a password", "did": made.did}, "InvalidRequest"),
            ({"password": "a password"}, "InvalidRequest"),
        ):
            r = httpx.post(f"{url}/xrpc/com.atproto.server.createAccount", json=body)
            assert (r.status_code, r.json()["error"]) == (400, code), (body, r.text)
        r = httpx.post(f"{url}/xrpc/com.atproto.server.createAccount", content=b"[1]")
        assert r.json()["error"] == "InvalidRequest"
        assert len(agent_actions(network.market, "placement.assign")) == 2
        assert sum(len(network.hosting.accounts(p)) for p in network.pds) == 2


def test_concurrent_sign_ups_never_double_book(network: Network) -> None:
    with entryway(network) as (url, _):
        handles = [_handle() for _ in range(6)]
        answers: dict[str, int] = {}

        def sign_up(handle: str) -> None:
            r = httpx.post(
                f"{url}/xrpc/com.atproto.server.createAccount",
                json={"handle": handle, "password": f"pw of {handle}"},
                timeout=120,
            )
            answers[handle] = r.status_code

        threads = [threading.Thread(target=sign_up, args=(h,)) for h in handles]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert answers == dict.fromkeys(handles, 200)
        # Water-filled: each placement saw the accounts made before it.
        assert sorted(len(network.hosting.accounts(p)) for p in network.pds) == [3, 3]
        placed = agent_actions(network.market, "placement.assign")
        assert [int(a["action"]["accounts"]) for a in placed] == [1] * 6
        assert verify_log(network.market.ledger.store.read_raw()).ok


def test_logins_and_sign_ups_are_limited_per_client(network: Network) -> None:
    limits = {"login_burst": 2, "login_per_s": 0.001, "signup_burst": 1, "signup_per_s": 0.001}
    with entryway(network, **limits) as (url, _):
        codes = [
            httpx.post(
                f"{url}/xrpc/com.atproto.server.createSession",
                json={"identifier": "someone.test", "password": "guessing"},
            )
            for _ in range(3)
        ]
        assert [r.status_code for r in codes] == [401, 401, 429]
        assert codes[2].json()["error"] == "RateLimitExceeded"
        assert int(codes[2].headers["retry-after"]) > 0
        made = [
            httpx.post(
                f"{url}/xrpc/com.atproto.server.createAccount",
                json={"handle": _handle(), "password": "a password"},
                timeout=60,
            )
            for _ in range(2)
        ]
        assert [r.status_code for r in made] == [200, 429]
        assert made[1].json()["error"] == "RateLimitExceeded"
        assert len(agent_actions(network.market, "placement.assign")) == 1


def test_only_the_dao_agent_reads_a_host_credential(network: Network) -> None:
    with entryway(network) as (url, _):
        made = _signup(url, _handle(), "a password here")
        via_agent = EntrywayCredentials(url, AGENT)
        password = via_agent(made.did)
        assert password is not None and password != "a password here"
        plaza_registry().validate_output(
            "social.plaza.entryway.getHostCredential", {"did": made.did, "password": password}
        )
        # It is the host's password for the account.
        host = host_of(network, made.did)
        r = httpx.post(
            f"{host}/xrpc/com.atproto.server.createSession",
            json={"identifier": made.did, "password": password},
        )
        assert r.status_code == 200
        assert via_agent("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa") is None
        # Anyone else is refused, with a token or without.
        from plaza.ledger.keystore import Signer

        other = Signer.generate()
        refused = httpx.post(
            f"{url}/xrpc/social.plaza.entryway.getHostCredential", json={"did": made.did}
        )
        assert refused.json()["error"] == "AuthenticationRequired"
        with pytest.raises(Exception, match="Forbidden"):
            EntrywayCredentials(url, other)(made.did)
        # A token signed by another key in the agent's name does not verify.
        with pytest.raises(Exception, match="AuthenticationRequired"):
            EntrywayCredentials(url, Signer(AGENT.did, other.key))(made.did)


def test_a_member_logs_in_after_the_agents_restore_a_dead_host(network: Network) -> None:
    with entryway(network) as (url, _):
        # Two members; the one on the first PDS posts, then that PDS dies.
        members = {h: f"password of {h}" for h in (_handle(), _handle())}
        made = {h: _signup(url, h, pw) for h, pw in members.items()}
        old, new = network.pds
        [handle] = [h for h, m in made.items() if host_of(network, m.did) == old]
        did = made[handle].did
        client = Client(base_url=url)
        client.login(handle, members[handle])
        for i in range(3):
            _post(client, f"post {i} before the host dies")
        before = _records(old, did)
        wait_for(f"the archive to hold {did}", holds(network.archive, old, did))
        network.first.stop()

        # The agents, nobody asking them: the restore takes the escrowed host password.
        agent = network.agent()
        agent.archive_url = network.archive
        agent.settle = SettlementDesired(evidence_grace_s=60)
        agent.credentials = EntrywayCredentials(url, AGENT)
        records = run_once(agent, GENESIS + 2_000)
        [batch] = [r for r in records if r.action.kind == "migration.batch"]
        assert batch.outcome == "executed", batch.detail
        assert batch.action.reason.rule == "migration.restore-gone-host"
        assert host_of(network, did) == new
        assert _records(new, did) == before

        # The member signs in at the entryway with the same handle and password, lands
        # on the new host, and posts there.
        again = Client(base_url=url)
        again.login(handle, members[handle])
        uri = _post(again, "hello from my new host")
        assert uri in {r["uri"] for r in _records(new, did)}
        keys = network.hosting.did_data(did)["rotationKeys"]
        assert keys[0] == AGENT.key.did_key()
        assert verify_log(network.market.ledger.store.read_raw()).ok


def test_a_member_puts_their_key_above_the_dao_key_or_removes_it(
    network: Network, tmp_path: Path
) -> None:
    with entryway(network) as (url, _):
        handle, password = _handle(), "a member's password"
        did = _signup(url, handle, password).did
        host = host_of(network, did)
        mail = network.root / f"pds{network.pds.index(host) + 1}" / "mail"
        dao_key = AGENT.key.did_key()
        host_key = network.hosting.did_data(did)["rotationKeys"][1]

        def account(*args: str) -> str:
            result = CliRunner().invoke(
                cli,
                ["account", *args, "--did", did, "--pds", url, "--mail-dir", str(mail),
                 "--directory", network.directory],
                env={"PLAZA_PASSWORD": password},
            )  # fmt: skip
            assert result.exit_code == 0, result.output
            return result.output

        # Their own key above the DAO agent's, through the entryway's session.
        keyfile = tmp_path / "mine.key"
        CliRunner().invoke(cli, ["account", "new-recovery-key", "--out", str(keyfile)])
        mine = parse_private_key(keyfile.read_text()).did_key()
        account("add-recovery-key", "--key", str(keyfile))
        assert network.hosting.did_data(did)["rotationKeys"] == [mine, dao_key, host_key]
        # Consent withdrawn: the DAO agent's key leaves, the others keep their order.
        out = account("remove-recovery-key", "--key-did", dao_key)
        assert dao_key not in out
        assert network.hosting.did_data(did)["rotationKeys"] == [mine, host_key]


def test_atproto_api_signs_up_and_in_through_the_entryway(network: Network) -> None:
    """The official TypeScript client: its agent follows the DID document to the host."""
    node = shutil.which("node")
    assert node is not None, "node is needed for the @atproto/api check"
    assert (JS / "node_modules" / "@atproto" / "api").is_dir(), (
        "@atproto/api is not installed: run `make js` (npm ci --prefix tests/js)"
    )
    with entryway(network) as (url, _):
        run = subprocess.run(
            [node, str(JS / "entryway_check.mjs"), url],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert run.returncode == 0, run.stderr[-3000:]
        out = json.loads(run.stdout.strip().splitlines()[-1])
        host = host_of(network, out["did"])
        assert out["pds"].rstrip("/") == host and out["firstPds"].rstrip("/") == host
        assert {r["uri"] for r in _records(host, out["did"])} == set(out["posts"])
