"""``plaza bench repo``: the repository core's speed, beside libipld's raw calls.

Each measurement is repeated ``runs`` times and reported as the median (with the
individual runs), timed in process CPU time. Where libipld can do the same raw work
(DAG-CBOR encode or decode, reading a CAR) it is timed on identical input and the
ratio ``plaza / libipld`` of the throughputs is given (below 1 means Plaza is slower).
libipld checks less: its CAR reader re-hashes nothing and its encoder guesses which
bytes are links, so the ratios price in Plaza's verification, not just its speed.
libipld has no MST and no CAR writer, so inserts are compared on the node encoding they
cause and export against a bare loop that writes the same blocks.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import libipld

from plaza.atproto import cbor
from plaza.atproto.car import encode_varint, read_car
from plaza.atproto.cid import CID
from plaza.atproto.commit import decode_commit, sign_commit, verify_commit
from plaza.atproto.crypto import ES256K, PrivateKey
from plaza.atproto.mst import MST
from plaza.atproto.mst_node import decode_node, encode_node, ref_cid
from plaza.atproto.repo import Repo, Write, export_car
from plaza.atproto.repo_verify import import_car

_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
_DID = "did:plc:benchbenchbenchbenchbenc"


def _tid(n: int) -> str:
    value = (1_700_000_000_000_000 + n) << 10
    out = []
    for _ in range(13):
        value, r = divmod(value, 32)
        out.append(_ALPHABET[r])
    return "".join(reversed(out))


def _record(i: int) -> dict[str, Any]:
    return {
        "$type": "app.bsky.feed.post",
        "text": f"benchmark post {i} " + "lorem ipsum " * (i % 8),
        "createdAt": "2024-05-01T12:00:00.000Z",
        "langs": ["en"],
    }


def _timed(fn: Callable[[], Any]) -> float:
    # CPU time of this process: the work is single-threaded and CPU-bound, and on a
    # shared machine wall time mostly measures the neighbours
    start = time.process_time()
    fn()
    return time.process_time() - start


def _runs(fn: Callable[[], Any], runs: int) -> list[float]:
    return [_timed(fn) for _ in range(runs)]


def _median_rate(samples: list[float], amount: float) -> dict[str, Any]:
    rates = [amount / s for s in samples]
    return {"median": statistics.median(rates), "runs": [round(r, 1) for r in rates]}


def _pair(
    name: str, unit: str, amount: float, plaza: list[float], libipld_s: list[float] | None
) -> dict[str, Any]:
    out: dict[str, Any] = {"unit": unit, "plaza": _median_rate(plaza, amount)}
    if libipld_s is not None:
        out["libipld"] = _median_rate(libipld_s, amount)
        out["ratio_plaza_to_libipld"] = round(out["plaza"]["median"] / out["libipld"]["median"], 3)
    out["plaza"]["median"] = round(out["plaza"]["median"], 1)
    if "libipld" in out:
        out["libipld"]["median"] = round(out["libipld"]["median"], 1)
    return {name: out}


def bench_mst(keys: int, runs: int) -> dict[str, Any]:
    """Incremental inserts, node encode/decode beside libipld, and the per-write path."""
    names = [f"app.bsky.feed.post/{_tid(i * 7919 % keys)}" for i in range(keys)]
    value = CID.compute(b"record")
    trees: list[MST] = []

    def inserts() -> None:
        tree = MST.empty()
        for name in names:
            tree = tree.put(name, value)
        tree.root()
        trees.append(tree)

    insert_s = [_timed(inserts) for _ in range(runs)]
    blocks = trees[-1].new_blocks()
    nodes = [decode_node(cid, data) for cid, data in blocks.items()]
    links = [[ref_cid(s) for s in n.subs] for n in nodes]
    # MST nodes are the one place libipld's encoder is safe: keys are ASCII, never CID-shaped
    values = [libipld.decode_dag_cbor(data) for data in blocks.values()]
    items = list(blocks.items())

    def plaza_encode() -> None:
        for node, node_links in zip(nodes, links, strict=True):
            encode_node(node.keys, node.vals, node_links)

    def libipld_encode() -> None:
        for v in values:
            libipld.encode_dag_cbor(v)

    def plaza_decode() -> None:
        for cid, data in items:
            decode_node(cid, data)

    def libipld_decode() -> None:
        for _cid, data in items:
            libipld.decode_dag_cbor(data)

    base = MST.build((n, value) for n in names[:20_000])
    stored = base.new_blocks()
    writes = min(2000, keys)

    def put_and_root() -> None:
        tree = MST.load(stored, base.root())
        for i in range(writes):
            tree = tree.put(f"app.bsky.feed.like/{_tid(i)}", value)
            tree.root()
            tree = tree.committed()

    out: dict[str, Any] = {}
    out.update(_pair("mst_insert", "keys/s", keys, insert_s, None))
    out["mst_insert"]["nodes"] = len(nodes)
    n = len(nodes)
    out.update(
        _pair(
            "mst_node_encode", "nodes/s", n, _runs(plaza_encode, runs), _runs(libipld_encode, runs)
        )
    )
    out.update(
        _pair(
            "mst_node_decode_validated",
            "nodes/s",
            n,
            _runs(plaza_decode, runs),
            _runs(libipld_decode, runs),
        )
    )
    out.update(
        _pair("mst_put_and_root_per_write", "writes/s", writes, _runs(put_and_root, runs), None)
    )
    return out


def bench_commits(runs: int, count: int = 2000) -> dict[str, Any]:
    key = PrivateKey.generate(ES256K)
    data = CID.compute(b"root")
    revs = [_tid(i) for i in range(count)]
    signed = sign_commit(_DID, data, revs[0], key)

    def sign() -> None:
        for rev in revs:
            sign_commit(_DID, data, rev, key)

    def verify() -> None:
        for _ in range(count):
            verify_commit(signed.commit, key.public_key)

    unsigned = signed.commit.unsigned_value()

    def plaza_encode() -> None:
        for _ in range(count):
            cbor.encode(unsigned)

    def libipld_encode() -> None:
        raw = {**unsigned, "data": data.raw}  # libipld guesses the CID from the bytes
        for _ in range(count):
            libipld.encode_dag_cbor(raw)

    out: dict[str, Any] = {}
    out.update(_pair("commit_sign", "commits/s", count, [_timed(sign) for _ in range(runs)], None))
    out.update(
        _pair("commit_verify", "commits/s", count, [_timed(verify) for _ in range(runs)], None)
    )
    out.update(
        _pair(
            "commit_encode",
            "commits/s",
            count,
            [_timed(plaza_encode) for _ in range(runs)],
            [_timed(libipld_encode) for _ in range(runs)],
        )
    )
    return out


def build_repo(records: int) -> tuple[CID, dict[CID, bytes]]:
    """A signed repository of ``records`` posts in memory: (commit cid, blocks)."""
    blocks: dict[CID, bytes] = {}
    items = []
    for i in range(records):
        block = cbor.encode(_record(i))
        cid = CID.compute(block)
        blocks[cid] = block
        items.append((f"app.bsky.feed.post/{_tid(i)}", cid))
    tree = MST.build(items)
    blocks.update(tree.new_blocks())
    signed = sign_commit(_DID, tree.root(), _tid(records + 1), PrivateKey.generate(ES256K))
    blocks[signed.cid] = signed.bytes
    return signed.cid, blocks


def bench_writes(commit_cid: CID, blocks: dict[CID, bytes], runs: int) -> dict[str, Any]:
    """The host's whole per-commit work: ``Repo.apply_writes`` with one created record
    (checks, record encoding, MST put, signing, inversion proof, slice CAR)."""
    key = PrivateKey.generate(ES256K)
    commits = 300
    samples = []
    for run_no in range(runs):
        store = dict(blocks)
        repo = Repo.load(store, commit_cid)
        base = 10_000_000 * (run_no + 1)

        def write(repo: Repo = repo, store: dict[CID, bytes] = store, base: int = base) -> None:
            for i in range(commits):
                result = repo.apply_writes(
                    [Write.create("app.bsky.feed.like", _tid(base + i), _record(i))],
                    key,
                    _tid(base + i),
                )
                store.update(result.new_blocks)
                repo = result.repo

        samples.append(_timed(write))
    return _pair("repo_commit_one_write", "commits/s", commits, samples, None)


def bench_car(commit_cid: CID, blocks: dict[CID, bytes], runs: int) -> dict[str, Any]:
    """Export and import-and-verify of the repository."""
    records = sum(1 for _ in MST.load(blocks, decode_commit(blocks[commit_cid]).data).items())
    car = export_car(blocks, commit_cid)
    mb = len(car) / 1e6
    order = list(read_car(car).blocks.items())

    def export() -> None:
        export_car(blocks, commit_cid)

    def bare_write() -> None:
        b"".join(encode_varint(36 + len(d)) + c.raw + d for c, d in order)

    def plaza_import() -> None:
        import_car(car)

    def plaza_read() -> None:
        read_car(car)

    def libipld_read() -> None:
        libipld.decode_car(car)

    lib = _runs(libipld_read, runs)
    out: dict[str, Any] = {"car": {"bytes": len(car), "records": records, "blocks": len(order)}}
    out.update(_pair("car_export", "MB/s", mb, _runs(export, runs), None))
    bare = _median_rate(_runs(bare_write, runs), mb)
    bare["median"] = round(bare["median"], 1)
    out["car_export"]["bare_loop_same_blocks"] = bare
    out.update(_pair("car_import_and_verify", "MB/s", mb, _runs(plaza_import, runs), lib))
    out.update(_pair("car_read_hash_checked", "MB/s", mb, _runs(plaza_read, runs), lib))
    return out


def run(*, runs: int = 3, keys: int = 100_000, records: int = 20_000) -> dict[str, Any]:
    """Every repository benchmark; ``runs`` repetitions each, medians reported."""
    result: dict[str, Any] = {"benchmark": "repo", "runs": runs, "clock": "process CPU time"}
    result.update(bench_mst(keys, runs))
    result.update(bench_commits(runs))
    commit_cid, blocks = build_repo(records)
    result.update(bench_writes(commit_cid, blocks, runs))
    result.update(bench_car(commit_cid, blocks, runs))
    return result
