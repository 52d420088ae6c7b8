"""Account migration between the two hosting providers, by the documented flow."""

from __future__ import annotations

import httpx
from typer.testing import CliRunner

from plaza.cli import app as cli
from tests.services.pds.conftest import Network
from tests.services.pds.firehose_reader import read_events

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def _xrpc(url: str, nsid: str, token: str, body: object = None, **kw: object) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"}
    return httpx.post(f"{url}/xrpc/{nsid}", json=body, headers=headers, timeout=30, **kw)  # type: ignore[arg-type]


def test_migrate_between_hosts(network: Network) -> None:
    old, new = network.pds
    acct = network.new_account(0, prefix="mig")
    did, token = acct["did"], acct["access"]
    # Some content: a blob, a post embedding it, a follow, preferences.
    blob = httpx.post(
        f"{old}/xrpc/com.atproto.repo.uploadBlob",
        content=PNG,
        headers={"authorization": f"Bearer {token}", "content-type": "image/png"},
    )
    assert blob.status_code == 200, blob.text
    image = blob.json()["blob"]
    post = _xrpc(
        old,
        "com.atproto.repo.createRecord",
        token,
        {
            "repo": did,
            "collection": "app.bsky.feed.post",
            "record": {
                "$type": "app.bsky.feed.post",
                "text": "moving soon",
                "createdAt": "2026-01-01T00:00:00.000Z",
                "embed": {
                    "$type": "app.bsky.embed.images",
                    "images": [{"image": image, "alt": "a picture"}],
                },
            },
        },
    )
    assert post.status_code == 200, post.text
    prefs = [{"$type": "app.bsky.actor.defs#adultContentPref", "enabled": False}]
    assert (
        _xrpc(old, "app.bsky.actor.putPreferences", token, {"preferences": prefs}).status_code
        == 200
    )
    old_records = httpx.get(
        f"{old}/xrpc/com.atproto.repo.listRecords",
        params={"repo": did, "collection": "app.bsky.feed.post"},
    ).json()
    new_seq_before = len(read_events(new, 0, quiet_s=0.3))

    result = CliRunner().invoke(
        cli,
        [
            "account",
            "migrate",
            "--did",
            did,
            "--from",
            old,
            "--to",
            new,
            "--directory",
            network.directory,
            "--mail-dir",
            str(network.mail_dir(0)),
        ],
        env={"PLAZA_PASSWORD": acct["password"]},
    )
    assert result.exit_code == 0, result.output
    assert "FAILED" not in result.output

    # Same DID, same records and blobs, on the new host.
    new_records = httpx.get(
        f"{new}/xrpc/com.atproto.repo.listRecords",
        params={"repo": did, "collection": "app.bsky.feed.post"},
    ).json()
    assert new_records["records"] == old_records["records"]
    got = httpx.get(
        f"{new}/xrpc/com.atproto.sync.getBlob", params={"did": did, "cid": image["ref"]["$link"]}
    )
    assert got.status_code == 200 and got.content == PNG
    assert got.headers["content-type"] == "image/png"
    # The directory points at the new host, and the member can log in there.
    data = httpx.get(f"{network.directory}/{did}/data").json()
    assert data["services"]["atproto_pds"]["endpoint"] == new
    session = httpx.post(
        f"{new}/xrpc/com.atproto.server.createSession",
        json={"identifier": did, "password": acct["password"]},
    ).json()
    assert session["active"] is True
    prefs_new = httpx.get(
        f"{new}/xrpc/app.bsky.actor.getPreferences",
        headers={"authorization": f"Bearer {session['accessJwt']}"},
    ).json()
    assert prefs_new["preferences"] == prefs
    # The old host refuses writes, and says the repository is deactivated.
    refused = _xrpc(
        old,
        "com.atproto.repo.createRecord",
        token,
        {
            "repo": did,
            "collection": "app.bsky.feed.post",
            "record": {
                "$type": "app.bsky.feed.post",
                "text": "too late",
                "createdAt": "2026-01-01T00:00:00.000Z",
            },
        },
    )
    assert refused.status_code == 401
    assert refused.json()["error"] == "AccountDeactivated"
    status = httpx.get(f"{old}/xrpc/com.atproto.sync.getRepoStatus", params={"did": did}).json()
    assert status == {"did": did, "active": False, "status": "deactivated", "rev": status["rev"]}
    # The new host writes.
    ok = _xrpc(
        new,
        "com.atproto.repo.createRecord",
        session["accessJwt"],
        {
            "repo": did,
            "collection": "app.bsky.feed.post",
            "record": {
                "$type": "app.bsky.feed.post",
                "text": "hello from the new host",
                "createdAt": "2026-01-01T00:00:00.000Z",
            },
        },
    )
    assert ok.status_code == 200, ok.text

    # The new host's firehose: #identity, #account (active), #commit — in that order.
    events = read_events(new, 0)[new_seq_before:]
    mine = [e for e in events if getattr(e, "did", None) == did or getattr(e, "repo", None) == did]
    kinds = [type(e).__name__ for e in mine]
    assert kinds[:4] == ["Identity", "Identity", "Account", "Commit"], kinds
    assert mine[2].active is True
    assert mine[3].ops == []
    assert mine[3].rev > status["rev"]  # signed with the new key after the old host's last rev
