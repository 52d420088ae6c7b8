"""DAO and ledger speed: appends and verification per second, IRV and delegation at scale.

* ledger append: events built, signed (ES256K), signature-checked and stored, one at a
  time, in memory and in a SQLite file (``Ledger.record``);
* ledger verify: ``verify_log`` over the stored bytes (decode, chain, signature, Merkle);
* DAO replay: a log of DAO votes verified with the DAO projection (rules included);
* IRV over ``ballots`` random partial rankings of ``candidates`` (NumPy, see
  :mod:`plaza.dao.irv`);
* delegation resolution over ``members`` members, 20% voting directly, 60% delegating
  to a random member (pointer jumping in NumPy, and the reference walk).

Each figure is the median of ``runs`` timings in process CPU time (the work is
single-threaded and the machine may be shared; wall-clock time would measure the
neighbours). ``samples`` lists every timing in seconds.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from plaza.atproto.crypto import PrivateKey
from plaza.dao.delegation import resolve, resolve_arrays
from plaza.dao.irv import irv
from plaza.ledger import EventStore, Ledger, MemoryEventStore, SqlEventStore, verify_log

_SAMPLES: dict[str, list[float]] = {}


def _median(fn: Callable[[], Any], runs: int, name: str = "") -> float:
    times = []
    for _ in range(runs):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    if name:
        _SAMPLES[name] = [round(x, 4) for x in times]
    return statistics.median(times)


def _append(store: EventStore, key: PrivateKey, n: int) -> Ledger:
    ledger = Ledger(store)
    did = key.did_key()
    for i in range(n):
        ledger.record(
            key,
            author_did=did,
            type="bench.note",
            payload={"i": i, "x": "y" * 40},
            time=1_700_000_000_000 + i,
        )
    return ledger


def bench_ledger(events: int, runs: int) -> dict[str, Any]:
    key = PrivateKey.from_bytes("ES256K", bytes(range(1, 33)))
    out: dict[str, Any] = {"events": events}
    out["append_memory_per_s"] = events / _median(
        lambda: _append(MemoryEventStore(), key, events), runs, "append_memory"
    )
    with tempfile.TemporaryDirectory() as tmp:
        stores: list[SqlEventStore] = []

        def sqlite_run() -> None:
            store = SqlEventStore.open(f"sqlite://{Path(tmp) / f'b{len(stores)}.db'}")
            stores.append(store)
            _append(store, key, events)

        out["append_sqlite_per_s"] = events / _median(sqlite_run, runs, "append_sqlite")
        last = stores[-1]
        raw = list(last.read_raw())

        def verify() -> None:
            report = verify_log(raw)
            assert report.ok

        out["verify_per_s"] = events / _median(verify, runs, "verify")
        out["verify_sqlite_read_and_check_per_s"] = events / _median(
            lambda: verify_log(last.read_raw()), runs, "verify_sqlite"
        )
        for s in stores:
            s.close()
    return out


def bench_dao_replay(votes: int, runs: int) -> dict[str, Any]:
    from plaza.dao.constitution import default_constitution
    from plaza.dao.mandate import default_mandate
    from plaza.dao.service import Dao
    from plaza.dao.state import DaoState
    from plaza.ledger.keystore import Signer

    founders = [Signer.generate() for _ in range(3)]
    dao = Dao.init(
        MemoryEventStore(),
        founders[0],
        constitution=default_constitution(),
        mandate=default_mandate(),
        now=1_700_000_000_000,
        cofounders=tuple(founders[1:]),
    )
    t0 = 1_700_000_000_000
    n = 0
    while n < votes:
        pid = dao.propose(founders[0], "signal", f"poll {n}", t0, choices=("a", "b"))
        for s in founders:
            dao.vote(s, pid, {"choice": "a"}, t0)
            n += 1
    raw = list(dao.store.read_raw())
    size = len(raw)

    def replay() -> None:
        report = verify_log(raw, projection=DaoState())
        assert report.ok, report.problem

    return {
        "dao_events": size,
        "dao_verify_replay_per_s": size / _median(replay, runs, "dao_replay"),
    }


def bench_irv(ballots: int, candidates: int, runs: int) -> dict[str, Any]:
    rng = np.random.default_rng(7)
    ranks = np.argsort(rng.random((ballots, candidates)), axis=1).astype(np.int32)
    depth = rng.integers(1, candidates + 1, size=ballots)
    ranks[np.arange(candidates)[None, :] >= depth[:, None]] = -1  # partial rankings
    weights = np.ones(ballots, dtype=np.int64)
    names = [f"c{i}" for i in range(candidates)]
    result = irv(ranks, weights, names)
    seconds = _median(lambda: irv(ranks, weights, names), runs, "irv")
    return {
        "irv_ballots": ballots,
        "irv_candidates": candidates,
        "irv_rounds": len(result.rounds),
        "irv_seconds": seconds,
        "irv_ballots_per_s": ballots / seconds,
    }


def bench_delegation(members: int, runs: int) -> dict[str, Any]:
    rng = np.random.default_rng(11)
    roll = rng.random(members)
    voted = roll < 0.2
    delegate = np.where(roll >= 0.4, rng.integers(0, members, size=members), -1)
    delegate[voted] = -1
    delegate[delegate == np.arange(members)] = -1
    carrier = resolve_arrays(delegate, voted)
    out = {
        "delegation_members": members,
        "delegation_counted": int((carrier >= 0).sum()),
        "delegation_arrays_seconds": _median(
            lambda: resolve_arrays(delegate, voted), runs, "delegation_arrays"
        ),
    }
    names = [str(i) for i in range(members)]
    edges = {names[i]: names[int(d)] for i, d in enumerate(delegate) if d >= 0}
    direct = [names[i] for i in np.flatnonzero(voted)]
    res = resolve(names, direct, edges)
    assert len(res.carrier) == out["delegation_counted"]
    out["delegation_reference_seconds"] = _median(
        lambda: resolve(names, direct, edges), 1, "delegation_reference"
    )
    return out


def run(
    *,
    runs: int = 3,
    events: int = 5_000,
    ballots: int = 1_000_000,
    candidates: int = 10,
    members: int = 1_000_000,
    votes: int = 3_000,
) -> dict[str, Any]:
    """Every DAO and ledger measurement, as one JSON-ready dict."""
    _SAMPLES.clear()
    out: dict[str, Any] = {"runs": runs}
    out.update(bench_ledger(events, runs))
    out.update(bench_dao_replay(votes, runs))
    out.update(bench_irv(ballots, candidates, runs))
    out.update(bench_delegation(members, runs))
    result: dict[str, Any] = {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}
    result["samples"] = dict(_SAMPLES)
    return result
