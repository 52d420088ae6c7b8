"""The labeler service on a live network: labels from the firehose, an account label
after repeated spam, the review queue (unsure posts, reports, appeals), queryLabels and
subscribeLabels with cursor replay, and refusals of bad input."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from atproto import Client
from plaza.atproto import cbor
from plaza.moderation.classifier import Classifier
from tests.moderation.labnet import ADMIN, LabNet, lab_network

SCAMS = [
    "WIN a FREE iPhone 16!!! Claim your prize at http://free-phone.example now",
    "Earn $5000 a week from home with bitcoin, DM me on whatsapp +44 7700 900123",
    "CONGRATULATIONS you were selected for a $1000 gift card, visit http://gift.example",
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, model: Classifier) -> Iterator[LabNet]:
    yield from lab_network(tmp_path_factory.mktemp("labsvc"), model)


def _token(client: Client, lab: LabNet) -> str:
    auth = client.com.atproto.server.get_service_auth(
        {"aud": lab.did, "lxm": "com.atproto.moderation.createReport"}
    )
    return str(auth.token)


def report(lab: LabNet, client: Client, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{lab.labeler}/xrpc/com.atproto.moderation.createReport",
        json=body,
        headers={"authorization": f"Bearer {_token(client, lab)}"},
        timeout=10,
    )


def admin(lab: LabNet, method: str, **kw: Any) -> httpx.Response:
    headers = {"authorization": f"Bearer {ADMIN}"}
    if "json" in kw:
        return httpx.post(f"{lab.labeler}/xrpc/{method}", headers=headers, timeout=10, **kw)
    return httpx.get(f"{lab.labeler}/xrpc/{method}", headers=headers, timeout=10, **kw)


def test_repeat_spammer_gets_an_account_label(lab: LabNet) -> None:
    client, who = lab.net.client(0, "spammer")
    posts = [client.send_post(text) for text in SCAMS]
    for post in posts:
        lab.until(lambda p=post: lab.labels(p.uri))
    account = lab.until(lambda: lab.labels(who["did"]))
    assert [x["val"] for x in account] == ["spam"] and "cid" not in account[0]


def test_report_review_and_appeal(lab: LabNet) -> None:
    author, a = lab.net.client(0, "author")
    reporter, _ = lab.net.client(0, "reporter")
    post = author.send_post("an ordinary post someone dislikes")
    subject = {"$type": "com.atproto.repo.strongRef", "uri": post.uri, "cid": post.cid}
    r = report(
        lab,
        reporter,
        {
            "reasonType": "com.atproto.moderation.defs#reasonSpam",
            "subject": subject,
            "reason": "looks like spam to me",
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["subject"] == subject

    # refusals: no token, a token for another method, a bad subject, an appeal by a stranger
    bad = httpx.post(f"{lab.labeler}/xrpc/com.atproto.moderation.createReport", json={})
    assert bad.status_code == 401
    for body in (
        {"reasonType": "nonsense", "subject": subject},
        {"reasonType": "com.atproto.moderation.defs#reasonSpam", "subject": {"uri": 1}},
        {"reasonType": "com.atproto.moderation.defs#reasonAppeal", "subject": subject},
    ):
        assert report(lab, reporter, body).status_code == 400
    assert admin(lab, "plaza.labeler.listReviews").status_code == 200
    assert httpx.get(f"{lab.labeler}/xrpc/plaza.labeler.listReviews").status_code == 401

    queue = admin(lab, "plaza.labeler.listReviews").json()["reviews"]
    item = next(x for x in queue if x["subject"] == post.uri and x["kind"] == "report")
    done = admin(
        lab,
        "plaza.labeler.resolveReview",
        json={"id": item["id"], "action": "label", "val": "spam"},
    ).json()
    assert done["status"] == "labelled"
    assert [x["val"] for x in lab.labels(post.uri)] == ["spam"]
    again = admin(lab, "plaza.labeler.resolveReview", json={"id": item["id"], "action": "dismiss"})
    assert again.status_code == 400

    # the author appeals; a moderator reverses: the label is negated
    r = report(
        lab,
        author,
        {
            "reasonType": "com.atproto.moderation.defs#reasonAppeal",
            "subject": subject,
            "reason": "it is not spam",
        },
    )
    assert r.status_code == 200, r.text
    queue = admin(lab, "plaza.labeler.listReviews").json()["reviews"]
    appeal = next(x for x in queue if x["kind"] == "appeal" and x["subject"] == post.uri)
    done = admin(
        lab, "plaza.labeler.resolveReview", json={"id": appeal["id"], "action": "reverse"}
    ).json()
    assert done["status"] == "reversed" and done["resolution"] == "negated spam"
    assert lab.labels(post.uri) == []
    assert a["did"] == appeal["did"]


async def _read(url: str, n: int) -> list[tuple[Any, Any]]:
    out = []
    async with connect(url) as ws:
        for _ in range(n):
            frame = await asyncio.wait_for(ws.recv(), 10)
            assert isinstance(frame, bytes)
            header, end = cbor.decode_first(frame)
            out.append((header, cbor.decode(frame[end:])))
    return out


def test_subscribe_labels_replays_from_the_cursor(lab: LabNet) -> None:
    client, _ = lab.net.client(0, "stream")
    post = client.send_post(SCAMS[0] + " again")
    lab.until(lambda: lab.labels(post.uri))
    last = httpx.get(f"{lab.labeler}/xrpc/_health", timeout=10).json()["seq"]
    base = lab.labeler.replace("http://", "ws://") + "/xrpc/com.atproto.label.subscribeLabels"
    frames = asyncio.run(_read(f"{base}?cursor=0", last))
    assert [b["seq"] for _, b in frames] == list(range(1, last + 1))
    assert all(h == {"op": 1, "t": "#labels"} for h, _ in frames)
    assert any(b["labels"][0]["uri"] == post.uri for _, b in frames)
    tail = asyncio.run(_read(f"{base}?cursor={last - 1}", 1))
    assert tail[0][1]["seq"] == last
    future = asyncio.run(_read(f"{base}?cursor={last + 100}", 1))
    assert future[0][0] == {"op": -1} and future[0][1]["error"] == "FutureCursor"


def test_query_labels_input(lab: LabNet) -> None:
    url = f"{lab.labeler}/xrpc/com.atproto.label.queryLabels"
    assert httpx.get(url).status_code == 400
    assert httpx.get(url, params={"uriPatterns": "at://*x"}).status_code == 400
    assert httpx.get(url, params={"uriPatterns": "*", "limit": "0"}).status_code == 400
    r = httpx.get(url, params={"uriPatterns": "at://*", "limit": "1"})
    assert r.status_code == 200 and len(r.json()["labels"]) == 1 and "cursor" in r.json()
    other = httpx.get(url, params={"uriPatterns": "*", "sources": "did:plc:someoneelse"})
    assert other.json() == {"labels": []}


def test_report_through_the_pds_with_atproto_proxy(lab: LabNet) -> None:
    reporter, r = lab.net.client(0, "proxied")
    target, t = lab.net.client(0, "target")
    via = reporter.with_proxy("atproto_labeler", lab.did)
    out = via.com.atproto.moderation.create_report(
        {
            "reasonType": "com.atproto.moderation.defs#reasonMisleading",
            "subject": {"$type": "com.atproto.admin.defs#repoRef", "did": t["did"]},
            "reason": "impersonation",
        }
    )
    assert out.reported_by == r["did"]
    queue = admin(lab, "plaza.labeler.listReviews").json()["reviews"]
    assert any(x["subject"] == t["did"] and x["reporter"] == r["did"] for x in queue)
    # without a target named the PDS sends it to its default moderation service
    plain = httpx.post(
        f"{lab.net.pds[0]}/xrpc/com.atproto.moderation.createReport",
        json={
            "reasonType": "com.atproto.moderation.defs#reasonSpam",
            "subject": {"$type": "com.atproto.admin.defs#repoRef", "did": t["did"]},
            "reason": "sent without atproto-proxy",
        },
        headers={"authorization": f"Bearer {reporter._session.access_jwt}"},
        timeout=10,
    )
    assert plain.status_code == 200, plain.text
    assert plain.json()["reportedBy"] == r["did"]
    queue = admin(lab, "plaza.labeler.listReviews").json()["reviews"]
    assert any(x["reason"] == "sent without atproto-proxy" for x in queue)
    assert target is not None
