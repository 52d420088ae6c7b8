"""The archive's reads over real HTTP: errors with a PDS's names and shape, paging,
proofs of absence."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from plaza.atproto.cid import CID, RAW
from plaza.atproto.repo import Write
from plaza.atproto.repo_verify import verify_record_proof
from tests.services.archive.conftest import archive, archive_settings, directory, latest, wait_for
from tests.services.archive.hostile import HostileFirehose, commit_frame, posts, registered


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """An archive holding three repositories; the first links three blobs."""
    tmp = tmp_path_factory.mktemp("xrpc")
    fire = HostileFirehose()
    with directory(tmp) as dir_url, fire.running() as source:
        authors = [registered(dir_url) for _ in range(3)]
        blobs = [CID.compute(bytes([i]) * 8, RAW) for i in range(3)]
        seq = 0
        for i, author in enumerate(authors):
            writes = posts("a", "b") if i else [with_blob(f"i{n}", b) for n, b in enumerate(blobs)]
            seq += 1
            fire.push(commit_frame(seq, author.commit(writes)), seq)
        first_rev = authors[0].repo.rev  # type: ignore[union-attr]
        seq += 1
        fire.push(commit_frame(seq, authors[0].commit([with_blob("i9", blobs[2])])), seq)
        with archive(archive_settings(tmp, source, dir_url)) as (url, app):
            for author in authors:
                wait_for("the repositories", lambda a=author: latest(url, a.did) is not None)
            wait_for("the last commit", lambda: latest(url, authors[0].did)["rev"] > first_rev)  # type: ignore[index]
            store = app.state.archive.store
            for b in blobs:  # as if fetched (their host is nowhere)
                assert store.blob_held(authors[0].did, b, "image/png", 8)
            yield {"url": url, "authors": authors, "blobs": blobs, "first_rev": first_rev}


def with_blob(rkey: str, blob: CID) -> Write:
    image = {"$type": "blob", "ref": blob, "mimeType": "image/png", "size": 8}
    return Write.create("app.bsky.feed.post", rkey, {"$type": "app.bsky.feed.post", "image": image})


def get(url: str, method: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{url}/xrpc/com.atproto.sync.{method}", params=params, timeout=10)


def error(r: httpx.Response) -> tuple[int, str]:
    body = r.json()
    assert set(body) == {"error", "message"} and body["message"]
    return r.status_code, body["error"]


def test_errors_have_a_pds_names(served: dict[str, Any]) -> None:
    url = served["url"]
    did = served["authors"][0].did
    unknown = "did:plc:" + "z" * 24
    assert error(get(url, "getRepo", did=unknown)) == (400, "RepoNotFound")
    assert error(get(url, "getLatestCommit", did=unknown)) == (400, "RepoNotFound")
    assert error(get(url, "getRepoStatus", did=unknown)) == (400, "RepoNotFound")
    assert error(get(url, "getRepo", did="not a did")) == (400, "InvalidRequest")
    assert error(get(url, "getRepo")) == (400, "InvalidRequest")
    assert error(get(url, "getRecord", did=did, collection="no", rkey="a")) == (
        400,
        "InvalidRequest",
    )
    assert error(get(url, "getBlob", did=did, cid="bafy")) == (400, "InvalidRequest")
    missing = str(CID.compute(b"never", RAW))
    assert error(get(url, "getBlob", did=did, cid=missing)) == (400, "BlobNotFound")
    assert error(get(url, "listBlobs", did=did, limit="0")) == (400, "InvalidRequest")
    assert error(get(url, "listBlobs", did=did, cursor="x")) == (400, "InvalidRequest")
    assert error(get(url, "getRepo", did=did, since="x")) == (400, "InvalidRequest")
    r = httpx.get(f"{url}/xrpc/com.atproto.sync.getBlocks", params={"did": did})
    assert error(r) == (501, "MethodNotImplemented")
    r = httpx.post(f"{url}/xrpc/com.atproto.sync.getRepo", params={"did": did})
    assert error(r) == (400, "InvalidRequest")


def test_get_record_proves_presence_and_absence(served: dict[str, Any]) -> None:
    url = served["url"]
    author = served["authors"][1]
    for rkey, present in (("a", True), ("nope", False)):
        r = get(url, "getRecord", did=author.did, collection="app.bsky.feed.post", rkey=rkey)
        assert r.status_code == 200
        proof = verify_record_proof(
            r.content, "app.bsky.feed.post", rkey, did=author.did, key=author.key.public_key
        )
        assert (proof.cid is not None) is present
        assert str(proof.commit_cid) == latest(url, author.did)["cid"]  # type: ignore[index]


def test_list_repos_pages(served: dict[str, Any]) -> None:
    url = served["url"]
    first = get(url, "listRepos", limit="2").json()
    assert len(first["repos"]) == 2 and "cursor" in first
    rest = get(url, "listRepos", limit="2", cursor=first["cursor"]).json()
    assert len(rest["repos"]) == 1 and "cursor" not in rest
    dids = [r["did"] for r in first["repos"] + rest["repos"]]
    assert dids == sorted(a.did for a in served["authors"])
    for item in first["repos"] + rest["repos"]:
        head = latest(url, item["did"])
        assert head == {"cid": item["head"], "rev": item["rev"]} and item["active"] is True


def test_list_blobs_pages_and_since(served: dict[str, Any]) -> None:
    url = served["url"]
    did = served["authors"][0].did
    every = sorted(served["blobs"], key=lambda c: c.raw)
    page = get(url, "listBlobs", did=did, limit="2").json()
    assert page["cids"] == [str(c) for c in every[:2]] and page["cursor"] == str(every[1])
    rest = get(url, "listBlobs", did=did, limit="2", cursor=page["cursor"]).json()
    assert rest == {"cids": [str(every[2])]}
    newer = get(url, "listBlobs", did=did, since=served["first_rev"]).json()
    assert newer == {"cids": [str(served["blobs"][2])]}
    assert get(url, "listBlobs", did=served["authors"][1].did).json() == {"cids": []}
