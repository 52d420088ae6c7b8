"""``plaza serve labeler`` as a real process beside a real directory: it trains a model
when it has none, registers its DID with the label key and endpoint, serves its service
record, and keeps the same DID when started again on another port."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx

from tests.cli.test_serve import _interrupt, serve

TRAIN = "label,text\n" + "".join(
    f"spam,win a free prize {i} now at http://x{i}.example\nham,nice song number {i}\n"
    for i in range(20)
)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_labeler(tmp_path: Path) -> None:
    data = tmp_path / "train.csv"
    data.write_text(TRAIN)
    directory, durl = serve("directory", "--port", "0", "--data-dir", str(tmp_path / "d"))
    try:
        args = ["--directory", durl, "--data-dir", str(tmp_path / "lab"), "--train-data", str(data)]
        proc, url = serve("labeler", "--port", str(_port()), *args)
        try:
            health = httpx.get(f"{url}/xrpc/_health", timeout=10).json()
            did = health["did"]
            doc = httpx.get(f"{durl}/{did}", timeout=10).json()
            assert doc["service"][0]["serviceEndpoint"] == url
            assert doc["verificationMethod"][0]["id"].endswith("#atproto_label")
            record = httpx.get(
                f"{url}/xrpc/com.atproto.repo.getRecord",
                params={"repo": did, "collection": "app.bsky.labeler.service", "rkey": "self"},
                timeout=10,
            ).json()
            assert "spam" in record["value"]["policies"]["labelValues"]
        finally:
            assert "stopped" in _interrupt(proc)
        assert (tmp_path / "lab" / "model.json").exists()
        proc, url2 = serve("labeler", "--port", str(_port()), *args)
        try:
            assert httpx.get(f"{url2}/xrpc/_health", timeout=10).json()["did"] == did
            doc = httpx.get(f"{durl}/{did}", timeout=10).json()
            assert doc["service"][0]["serviceEndpoint"] == url2  # moved: an update op
        finally:
            _interrupt(proc)
    finally:
        _interrupt(directory)
