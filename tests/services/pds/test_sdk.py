"""The atproto SDK as an unmodified client of a live PDS on loopback."""

from __future__ import annotations

import secrets
import struct
import zlib

import httpx
import libipld
import pytest
from atproto_client.exceptions import BadRequestError

from atproto import Client, models
from tests.services.pds.conftest import Network


@pytest.mark.parametrize("host", [0, 1], ids=["sqlite-pds", "second-pds"])
def test_sdk_account_post_read_delete(network: Network, host: int) -> None:
    url = network.pds[host]
    handle = f"sdk{secrets.token_hex(3)}.test"
    password = "correct horse battery"
    signup = Client(base_url=url)
    created = signup.com.atproto.server.create_account(
        models.ComAtprotoServerCreateAccount.Data(
            handle=handle, password=password, email=f"{handle}@example.com"
        )
    )
    assert created.did.startswith("did:plc:")
    assert created.handle == handle

    client = Client(base_url=url)
    profile = client.login(handle, password)
    assert profile.handle == handle
    assert client.me is not None and client.me.did == created.did

    post = client.send_post("hello from the atproto SDK")
    assert post.uri.startswith(f"at://{created.did}/app.bsky.feed.post/")
    like = client.like(post.uri, post.cid)
    follow = client.follow(created.did)

    rkey = post.uri.rsplit("/", 1)[1]
    fetched = client.get_post(rkey, created.did)
    assert fetched.value.text == "hello from the atproto SDK"
    assert fetched.cid == post.cid

    posts = client.com.atproto.repo.list_records(
        models.ComAtprotoRepoListRecords.Params(repo=created.did, collection="app.bsky.feed.post")
    )
    assert [r.uri for r in posts.records] == [post.uri]
    likes = client.com.atproto.repo.list_records(
        models.ComAtprotoRepoListRecords.Params(repo=created.did, collection="app.bsky.feed.like")
    )
    assert [r.uri for r in likes.records] == [like.uri]
    assert likes.records[0].value.subject.uri == post.uri

    assert client.delete_post(post.uri)
    assert client.unfollow(follow.uri)
    with pytest.raises(BadRequestError) as err:
        client.get_post(rkey, created.did)
    assert err.value.response is not None
    assert err.value.response.content.error == "RecordNotFound"

    # The exported repository holds exactly what is left: the like.
    car = client.com.atproto.sync.get_repo(models.ComAtprotoSyncGetRepo.Params(did=created.did))
    header, blocks = libipld.decode_car(car)
    types = sorted(b.get("$type") for b in blocks.values() if isinstance(b, dict) and "$type" in b)
    assert types == ["app.bsky.feed.like"]
    assert len(header["roots"]) == 1


def test_sdk_refresh_session(network: Network) -> None:
    acct = network.new_account(0)
    client = Client(base_url=network.pds[0])
    client.login(acct["handle"], acct["password"])
    old_refresh = client._session.refresh_jwt
    refreshed = client._refresh_and_set_session()
    assert refreshed.did == acct["did"]
    assert client._session.refresh_jwt != old_refresh
    # The old refresh token was rotated out and no longer works.
    stale = Client(base_url=network.pds[0])
    with pytest.raises(BadRequestError) as err:
        stale.com.atproto.server.refresh_session(headers={"Authorization": f"Bearer {old_refresh}"})
    assert err.value.response is not None
    assert err.value.response.content.error == "InvalidToken"
    # The new session still writes.
    assert client.send_post("after refresh").uri


def test_sdk_switches_to_the_did_document_endpoint(network: Network) -> None:
    acct = network.new_account(1)
    client = Client(base_url=network.pds[1])
    client.login(acct["did"], acct["password"])
    assert client._base_url.rstrip("/").startswith(network.pds[1])
    session = client.com.atproto.server.get_session()
    assert session.did == acct["did"] and session.active


def _png_1x1() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)  # 1x1, 8-bit RGB
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    chunks = chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def test_sdk_send_image(network: Network) -> None:
    """The SDK uploads with ``Content-Type: */*``; the PDS takes the type from the bytes."""
    acct = network.new_account(0)
    client = Client(base_url=network.pds[0])
    client.login(acct["handle"], acct["password"])
    png = _png_1x1()
    post = client.send_image(text="a green pixel", image=png, image_alt="one green pixel")
    rkey = post.uri.rsplit("/", 1)[1]
    record = client.get_post(rkey, acct["did"]).value
    assert record.text == "a green pixel"
    image = record.embed.images[0]
    assert image.alt == "one green pixel"
    assert image.image.mime_type == "image/png"
    assert image.image.size == len(png)
    cid = image.image.ref.link
    fetched = client.com.atproto.sync.get_blob(
        models.ComAtprotoSyncGetBlob.Params(did=acct["did"], cid=cid)
    )
    assert fetched == png
    served = httpx.get(
        f"{network.pds[0]}/xrpc/com.atproto.sync.getBlob", params={"did": acct["did"], "cid": cid}
    )
    assert served.headers["content-type"] == "image/png"
