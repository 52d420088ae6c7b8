"""The agents' restore path against live services: a provider's PDS stops answering, and
the migration reconciler rebuilds the accounts whose members listed the DAO agent's
migration key on the other PDS, from an archive's copies, with that key. The archive
is the archive service (:mod:`plaza.services.archive`), following the first PDS's
firehose directly.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from plaza.agents.hosting import Hosting
from plaza.agents.runner import LiveAgent, run_once
from plaza.agents.settlement import SettlementDesired
from plaza.atproto.repo_verify import import_car
from plaza.services.directory import DirectorySettings
from plaza.services.directory import create_app as create_directory
from plaza.services.pds import PdsSettings, create_app
from plaza.services.runner import ServedApp, ServerThread
from tests.agents.test_live import AGENT, GENESIS, Net, _market, _opt_in, _port, _post, _records
from tests.services.archive.conftest import archive, archive_settings, holds, wait_for


class Stoppable(Net):
    """The live network of :mod:`tests.agents.test_live`, with a first PDS that stops."""

    archive: str
    first: ServerThread


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Stoppable]:
    dport, p1, p2 = _port(), _port(), _port()
    directory = f"http://127.0.0.1:{dport}"
    dirs = [tmp_path / "pds1", tmp_path / "pds2"]

    def pds(i: int, port: int) -> ServedApp:
        settings = PdsSettings(
            data_dir=dirs[i], public_url=f"http://127.0.0.1:{port}", directory_url=directory
        )
        return ServedApp(f"pds{i + 1}", create_app(settings), port=port)

    stay = ServerThread(
        [
            ServedApp(
                "directory",
                create_directory(DirectorySettings.for_data_dir(tmp_path / "d")),
                port=dport,
            ),
            pds(1, p2),
        ]
    )
    first = ServerThread([pds(0, p1)])
    with (
        stay as (directory_url, second),
        first as (old,),
        archive(archive_settings(tmp_path, old, directory_url)) as (archive_url, _),
    ):
        out = Stoppable(directory_url, [old, second], [d / "mail" for d in dirs])
        out.archive, out.first = archive_url, first
        yield out


def _account(pds: str) -> dict[str, str]:
    handle = f"r{secrets.token_hex(4)}.test"
    password = "pw-" + secrets.token_hex(8)
    r = httpx.post(
        f"{pds}/xrpc/com.atproto.server.createAccount",
        json={"handle": handle, "password": password, "email": f"{handle}@example.com"},
    )
    assert r.status_code == 200, r.text
    return {"did": r.json()["did"], "password": password, "handle": handle}


def test_agents_restore_a_gone_host_from_the_archive(net: Stoppable, tmp_path: Path) -> None:
    _, m = _market(tmp_path, net)
    hosting = Hosting(net.directory)
    old, new = net.pds
    mover, stayer = _account(old), _account(old)
    for acct in (mover, stayer):
        _post(old, acct, f"hello from {acct['did']}")
        _post(old, acct, "a second post")
    _opt_in(old, net.mail[0], mover, net.directory)  # the stayer does not opt in
    before = {a["did"]: _records(old, a["did"]) for a in (mover, stayer)}
    for acct in (mover, stayer):
        wait_for(f"the archive to hold {acct['did']}", holds(net.archive, old, acct["did"]))

    net.first.stop()
    copy = httpx.get(f"{net.archive}/xrpc/com.atproto.sync.getRepo", params={"did": mover["did"]})
    archived_root = import_car(copy.content, did=mover["did"]).data
    agent = LiveAgent(
        market=m,
        signer=AGENT,
        hosting=hosting,
        migration_key=AGENT.key,
        settle=SettlementDesired(evidence_grace_s=60),
    )
    # Without an archive, the accounts of the gone host are not even seen.
    records = run_once(agent, GENESIS + 1_000)
    assert not [r for r in records if r.action.kind == "migration.batch"]

    agent.archive_url = net.archive
    records = run_once(agent, GENESIS + 2_000)
    [batch] = [r for r in records if r.action.kind == "migration.batch"]
    assert batch.outcome == "executed", batch.detail
    assert batch.action.reason.rule == "migration.restore-gone-host"
    assert batch.action["source"] == "mirror"
    assert f"restored from {net.archive} 1 accounts" in batch.detail
    assert mover["did"] in batch.detail and stayer["did"] not in batch.detail

    # The restored account: the directory names the second PDS, which serves the same
    # records under the same MST root, re-signed by its key; the agent's key stays.
    data = hosting.did_data(mover["did"])
    assert data["services"]["atproto_pds"]["endpoint"] == new
    assert AGENT.key.did_key() in data["rotationKeys"]
    assert _records(new, mover["did"]) == before[mover["did"]]
    car = httpx.get(f"{new}/xrpc/com.atproto.sync.getRepo", params={"did": mover["did"]})
    assert import_car(car.content, did=mover["did"]).data == archived_root
    assert mover["did"] in hosting.accounts(new)
    # The member who did not opt in is left where the directory says.
    assert hosting.did_data(stayer["did"])["services"]["atproto_pds"]["endpoint"] == old
    assert not [r for r in run_once(agent, GENESIS + 3_000) if r.action.kind == "migration.batch"]
