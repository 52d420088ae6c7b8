"""The labeler's speed: posts classified per second on one core, and the time from a
post to its label on a live network.

* ``classify_posts_per_s``: :meth:`Classifier.scores` over ``posts`` texts (the shipped
  YouTube comments, repeated) in batches of ``batch``, as the labeler takes a firehose
  batch; median of ``runs``. Throughputs count this process's CPU seconds (one core:
  the work is single-threaded), so other load on the machine does not lower them;
  ``classify_wall_posts_per_s`` is the same over wall time;
* ``judge_posts_per_s``: the same through :meth:`Moderator.judge` (scores, scam signals,
  same-text and burst tracking);
* ``pipeline_posts_per_s``: judged, then labels signed and stored with the cursor in
  SQLite (:meth:`Labeler.apply`), every batch one transaction;
* ``label_latency_p95_ms``: a directory, a PDS and the labeler following the PDS's
  firehose, on real sockets; ``live`` obvious scam posts are created over HTTP one after
  another, and a ``subscribeLabels`` client notes when each post's label arrives: the
  95th percentile (and median) of creation-call start to label receipt.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect

from plaza.atproto import cbor
from plaza.atproto.crypto import PrivateKey
from plaza.moderation.classifier import Classifier
from plaza.moderation.dataset import read_csv
from plaza.moderation.evaluate import train
from plaza.moderation.labeler import Labeler
from plaza.moderation.moderator import Moderator, Post
from plaza.moderation.service import LabelerSettings
from plaza.moderation.service import create_app as create_labeler
from plaza.moderation.store import LabelerStore
from plaza.services.directory import DirectorySettings
from plaza.services.directory import create_app as create_directory
from plaza.services.pds import PdsSettings
from plaza.services.pds import create_app as create_pds
from plaza.services.runner import ServedApp, ServerThread

SHIPPED = Path("data/spam/label-text")
SCAM = "WIN a FREE $1000 gift card!!! claim your prize now at http://prize.example/{n}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _texts(n: int) -> list[str]:
    files = sorted(SHIPPED.glob("*.csv"))
    base = [t for f in files for t in read_csv(f).texts] or [SCAM, "a calm ordinary post"]
    return [f"{t} {i}" for i, t in zip(range(n), itertools.cycle(base), strict=False)]


def _rate(n: int, seconds: list[float]) -> float:
    return round(n / statistics.median(seconds), 1)


def _throughput(model: Classifier, posts: int, batch: int, runs: int) -> dict[str, float]:
    texts = _texts(posts)
    items = [Post(f"at://did:plc:b{i % 97}/app.bsky.feed.post/{i}", None,
                  f"did:plc:b{i % 97}", t) for i, t in enumerate(texts)]  # fmt: skip
    chunks = [items[i : i + batch] for i in range(0, len(items), batch)]
    classify, judge, pipeline, walls = [], [], [], []
    for _ in range(runs):
        start, wall = time.process_time(), time.perf_counter()
        for chunk in chunks:
            model.scores([p.text for p in chunk])
        classify.append(time.process_time() - start)
        walls.append(time.perf_counter() - wall)
        mod = Moderator(model)
        start = time.process_time()
        for chunk in chunks:
            mod.judge(chunk, 1000.0)
        judge.append(time.process_time() - start)
        with tempfile.TemporaryDirectory() as tmp:
            store = LabelerStore.for_data_dir(Path(tmp))
            labeler = Labeler(store, "did:plc:bench", PrivateKey.generate())
            mod = Moderator(model)
            start = time.process_time()
            for n, chunk in enumerate(chunks):
                with store.db.transaction():
                    labeler.apply(mod.judge(chunk, 1000.0))
                    store.set_cursor("bench", n)
            pipeline.append(time.process_time() - start)
            store.close()
    return {
        "classify_posts_per_s": _rate(posts, classify),
        "classify_wall_posts_per_s": _rate(posts, walls),
        "judge_posts_per_s": _rate(posts, judge),
        "pipeline_posts_per_s": _rate(posts, pipeline),
    }


def _latency(model: Classifier, live: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        dport, pport, lport = _free_port(), _free_port(), _free_port()
        directory, pds_url = f"http://127.0.0.1:{dport}", f"http://127.0.0.1:{pport}"
        lab_url = f"http://127.0.0.1:{lport}"
        labeler = create_labeler(LabelerSettings(
            data_dir=root / "labeler", public_url=lab_url, directory_url=directory,
            classifier=model, relay_urls=(pds_url,),
        ))  # fmt: skip
        apps = [
            ServedApp("directory", create_directory(DirectorySettings.for_data_dir(root / "d")),
                      port=dport),
            ServedApp("pds", create_pds(PdsSettings(data_dir=root / "pds", public_url=pds_url,
                                                    directory_url=directory)), port=pport),
            ServedApp("labeler", labeler, port=lport),
        ]  # fmt: skip
        with ServerThread(apps), httpx.Client(timeout=30) as http:
            return _measure(http, pds_url, lab_url, live)


def _measure(http: httpx.Client, pds: str, lab: str, live: int) -> dict[str, float]:
    handle = f"bench{secrets.token_hex(3)}.test"
    account = http.post(f"{pds}/xrpc/com.atproto.server.createAccount", json={
        "handle": handle, "password": secrets.token_hex(8), "email": f"{handle}@example.com",
    }).json()  # fmt: skip
    auth = {"authorization": f"Bearer {account['accessJwt']}"}
    got: dict[str, float] = {}
    ready = threading.Event()
    stop = threading.Event()

    async def listen() -> None:
        url = lab.replace("http://", "ws://") + "/xrpc/com.atproto.label.subscribeLabels"
        async with connect(f"{url}?cursor=0") as ws:
            ready.set()
            while not stop.is_set():
                try:
                    frame = await asyncio.wait_for(ws.recv(), 0.5)
                except TimeoutError:
                    continue
                assert isinstance(frame, bytes)
                _, end = cbor.decode_first(frame)
                for label in cbor.decode(frame[end:]).get("labels", []):
                    got.setdefault(label["uri"], time.monotonic())

    listener = threading.Thread(target=lambda: asyncio.run(listen()), daemon=True)
    listener.start()
    ready.wait(30)
    sent: dict[str, float] = {}
    for n in range(live):
        start = time.monotonic()
        r = http.post(f"{pds}/xrpc/com.atproto.repo.createRecord", headers=auth, json={
            "repo": account["did"], "collection": "app.bsky.feed.post",
            "record": {"$type": "app.bsky.feed.post", "text": SCAM.format(n=n),
                       "createdAt": "2026-01-01T00:00:00.000Z"},
        })  # fmt: skip
        sent[r.json()["uri"]] = start
    deadline = time.monotonic() + 60
    while len(set(sent) & set(got)) < len(sent) and time.monotonic() < deadline:
        time.sleep(0.05)  # waiting on another thread's sockets: bounded above
    stop.set()
    listener.join(5)
    waits = sorted((got[u] - s) * 1000 for u, s in sent.items() if u in got)
    p95 = waits[min(len(waits) - 1, int(0.95 * len(waits)))] if waits else float("nan")
    return {
        "label_latency_p95_ms": round(p95, 1),
        "label_latency_median_ms": round(statistics.median(waits), 1) if waits else 0.0,
        "live_posts": live,
        "live_labelled": len(waits),
    }


def run(
    *, posts: int = 5000, batch: int = 200, runs: int = 3, live: int = 40,
    model: Classifier | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Every figure of the module docstring."""
    if model is None:
        files = sorted(SHIPPED.glob("*.csv"))
        data = read_csv(files[0])
        for f in files[1:]:
            data = data + read_csv(f)
        model = train(data)
    out: dict[str, Any] = {"posts": posts, "batch": batch, "runs": runs}
    out.update(_throughput(model, posts, batch, runs))
    if live:
        out.update(_latency(model, live))
    return out
