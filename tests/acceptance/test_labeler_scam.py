"""Done-when of the labeler (issue 15): an obvious scam post is labelled within 30 s and
an ordinary post is not; the label verifies against the ``#atproto_label`` key of the
labeler's DID document in the directory; the app view shows it on the post.

Real processes' parts on real sockets: a directory, a PDS, the labeler following the
PDS's firehose, an app view accepting the labeler's labels; the atproto SDK as client.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from plaza.atproto.crypto import PublicKey
from plaza.atproto.datamodel import from_json
from plaza.moderation.labels import verify_label
from plaza.moderation.modelfile import load, save
from tests.moderation.conftest import trained
from tests.moderation.labnet import LabNet, lab_network

SCAM = (
    "CONGRATULATIONS!!! You have WON a $1,000 Walmart gift card. Claim your prize now at "
    "http://free-prize.example/claim or call +1 (555) 201-7788"
)
ORDINARY = "Walked the dog along the river this morning, the light on the water was lovely."


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabNet]:
    # the model goes through its JSON file, as the service loads it
    path = tmp_path_factory.mktemp("model") / "model.json"
    save(trained(), path)
    yield from lab_network(tmp_path_factory.mktemp("labnet"), load(path))


def test_scam_post_is_labelled_and_shown(lab: LabNet) -> None:
    client, _ = lab.net.client(0, "scam")
    reader, _ = lab.net.client(0, "reader")
    start = time.monotonic()
    scam = client.send_post(SCAM)
    ordinary = client.send_post(ORDINARY)

    labels = lab.until(lambda: lab.labels(scam.uri), deadline_s=30)
    took = time.monotonic() - start
    assert took < 30
    assert [x["val"] for x in labels] == ["scam"]
    lab.labeler_synced()
    assert lab.labels(ordinary.uri) == []

    # the label verifies against the key the labeler's DID document names
    doc = httpx.get(f"{lab.net.directory}/{lab.did}", timeout=10).json()
    methods = {m["id"].split("#")[-1]: m for m in doc["verificationMethod"]}
    key = PublicKey.from_multikey(methods["atproto_label"]["publicKeyMultibase"])
    services = {s["id"].split("#")[-1]: s for s in doc["service"]}
    assert services["atproto_labeler"]["serviceEndpoint"] == lab.labeler
    label = from_json(labels[0])
    assert label["src"] == lab.did and label["ver"] == 1 and label["cid"] == scam.cid
    assert verify_label(label, key)
    assert not verify_label({**label, "val": "spam"}, key)

    # the app view shows it on the post, and nothing on the ordinary one
    def shown() -> bool:
        posts = reader.get_posts([scam.uri, ordinary.uri]).posts
        return len(posts) == 2 and bool(posts[0].labels)

    lab.until(shown)
    scam_view, ordinary_view = reader.get_posts([scam.uri, ordinary.uri]).posts
    assert [x.val for x in scam_view.labels] == ["scam"]
    assert scam_view.labels[0].src == lab.did
    assert not ordinary_view.labels
