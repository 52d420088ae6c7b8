"""``plaza bench relay``: verified commits per second and lag of the relay, measured
against simulated hosts on loopback.

Theory of operation. Four kinds of process share the machine:

- the simulated hosts (:mod:`plaza.bench.relay_hosts`): one process serving every
  host's ``subscribeRepos`` on its own loopback port, sending pre-built, validly signed
  sync v1.1 ``#commit`` frames (:mod:`plaza.bench.relay_fixture`) at the offered rate;
- the directory (:mod:`plaza.bench.relay_directory`), where every simulated DID is
  registered (its genesis, then an update naming its host's URL) before the relay starts;
- the relay under test, ``python -m plaza.cli serve relay`` with a fresh data
  directory, ``--directory`` and one ``--crawl`` per host (or, with ``target="echo"``,
  the pass-through stand-in :mod:`plaza.bench.relay_echo`, to measure the harness);
- this harness, subscribed to the relay's own firehose.

The offered load goes up in steps. In each step the hosts send at the step's rate for
``warmup + seconds``, then pause until the relay has caught up (or stops making
progress). The hosts record when each frame was *scheduled*; the harness records when
the relay emitted it (each output ``#commit`` is matched to its frame by
``(repo, rev)``). For the frames scheduled in the step's measured window (after the
warm-up), the lag is emission minus schedule, and a frame never emitted counts as
infinitely late; the verified rate is the relay's output of ``#commit`` events per
second within the window. The relay's CPU time (with any worker processes) and memory
come from ``/proc``; its ``/_metrics`` gives the verified and dropped counts.

The summary is the highest step whose p99 lag is within ``lag_limit_ms``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import pstats
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import libipld
import numpy as np
from websockets.asyncio.client import connect

from plaza.atproto.crypto import ES256K, PrivateKey
from plaza.atproto.plc import PlcOperation, create_update, parse_operation
from plaza.bench.relay_fixture import FixtureSpec, ensure_fixture, load_meta
from plaza.bench.relay_procs import (
    BenchProcessError,
    Child,
    free_port,
    machine_busy_s,
    peak_rss,
    usage,
)

MIB = 1024 * 1024


@dataclass(frozen=True)
class RelayBenchConfig:
    """What to measure: ``hosts`` x ``accounts`` simulated accounts with ``records``
    records each, offered ``rates`` (commits/s in total) for ``warmup`` + ``seconds``
    each; ``target`` is ``relay`` or ``echo``; ``profile``: run the relay under cProfile
    and write its stats there."""

    hosts: int = 50
    accounts: int = 20
    records: int = 100
    rates: tuple[float, ...] = (500, 1000, 2000, 3000)
    seconds: float = 15.0
    warmup: float = 5.0
    target: str = "relay"
    profile: Path | None = None
    cache: Path | None = None
    lag_limit_ms: float = 250.0
    progress: bool = True
    prime_rate: float = 500.0
    """Rate of the first commit of every account, sent before the steps."""
    relay_args: tuple[str, ...] = ()
    """More options for ``plaza serve relay`` (``--verify-workers=1``, say)."""
    work_dir: Path | None = None
    """Where the processes' data and logs go, kept afterwards (None: a temporary
    directory, removed)."""

    def spec(self) -> FixtureSpec:
        # a quarter more than the steps need: a step's window can run a little long
        frames = 1.25 * sum(r * (self.warmup + self.seconds) for r in self.rates)
        per_account = math.ceil(frames / (self.hosts * self.accounts)) + 2
        return FixtureSpec(self.hosts, self.accounts, self.records, per_account)


@dataclass
class Output:
    """What the harness received from the relay's firehose."""

    at: dict[tuple[str, str], float] = field(default_factory=dict)
    kinds: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    unknown: int = 0
    times: list[float] = field(default_factory=list)

    def take(self, frame: bytes, now: float, index: dict[tuple[str, str], tuple[int, int]]) -> None:
        """Count one frame of the relay's output, received at ``now``; a ``#commit``
        is matched to the frame it carries by ``(repo, rev)``."""
        try:
            header, body = libipld.decode_dag_cbor_multi(frame)
            kind = str(header.get("t", header.get("op")))
            key = (body["repo"], body["rev"]) if kind == "#commit" else None
        except (ValueError, TypeError, KeyError, AttributeError):
            kind, key = "undecodable", None
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        if key is None:
            return
        if key not in index:
            self.unknown += 1
        elif key in self.at:
            self.duplicates += 1
        else:
            self.at[key] = now
            self.times.append(now)


def _log(config: RelayBenchConfig, message: str) -> None:
    if config.progress:
        print(message, file=sys.stderr, flush=True)


async def _register(directory: str, urls: Sequence[str], fixture: Path, accounts: int) -> int:
    """Submit every account's genesis and an update naming its host; return the count."""
    jobs: list[tuple[str, dict[str, Any]]] = []
    for h, url in enumerate(urls):
        for account in load_meta(fixture, h)["accounts"][:accounts]:
            genesis = account["genesis"]
            key = PrivateKey.from_bytes(ES256K, bytes.fromhex(account["key"]))
            op = parse_operation(genesis)
            assert isinstance(op, PlcOperation)  # the fixture wrote a genesis operation
            update = create_update(op, key, pds_endpoint=url)
            jobs.append((account["did"], genesis))
            jobs.append((account["did"], update.to_json()))
    limit = asyncio.Semaphore(16)

    async def post(client: httpx.AsyncClient, did: str, op: dict[str, Any]) -> None:
        async with limit:
            response = await client.post(f"{directory}/{did}", json=op)
        if response.status_code != 200:
            raise BenchProcessError(f"directory refused {did}: {response.text[:300]}")

    async with httpx.AsyncClient(timeout=30.0) as client:
        # a DID's update must follow its genesis: genesis ops first, then the updates
        await asyncio.gather(*(post(client, d, op) for d, op in jobs[0::2]))
        await asyncio.gather(*(post(client, d, op) for d, op in jobs[1::2]))
    return len(jobs) // 2


def _index(fixture: Path, hosts: int, frames: int) -> dict[tuple[str, str], tuple[int, int]]:
    """(repo, rev) -> (host, frame) for every frame the hosts may send."""
    index: dict[tuple[str, str], tuple[int, int]] = {}
    for h in range(hosts):
        meta = load_meta(fixture, h)
        dids = [a["did"] for a in meta["accounts"]]
        for k, (owner, rev) in enumerate(zip(meta["owners"], meta["revs"], strict=True)):
            if k >= frames:
                break
            index[(dids[owner], rev)] = (h, k)
    return index


def _relay_argv(config: RelayBenchConfig, port: int, data: Path, directory: str) -> list[str]:
    if config.target == "echo":
        argv = [sys.executable, "-m", "plaza.bench.relay_echo", "--port", str(port)]
    else:
        argv = [sys.executable]
        if config.profile is not None:
            argv += ["-m", "cProfile", "-o", str(config.profile)]
        argv += ["-m", "plaza.cli", "serve", "relay", "--host", "127.0.0.1"]
        argv += ["--port", str(port), "--data-dir", str(data), "--directory", directory]
        argv += config.relay_args
    return argv


async def _metrics(url: str) -> dict[str, Any]:
    with contextlib.suppress(httpx.HTTPError, ValueError):
        # a saturated relay may answer late; a missing answer is reported as null
        async with httpx.AsyncClient(timeout=20.0) as client:
            response = await client.get(f"{url}/_metrics")
            if response.status_code == 200:
                value: dict[str, Any] = response.json()
                return value
    return {}


def _dropped(metrics: dict[str, Any]) -> dict[str, int]:
    raw = metrics.get("dropped", {})
    return {str(k): int(v) for k, v in raw.items()} if isinstance(raw, dict) else {}


def _step_result(
    *,
    rate: float,
    window: tuple[float, float],
    sent_at: np.ndarray[Any, Any],
    index: dict[tuple[str, str], tuple[int, int]],
    output: Output,
    cpu_s: float,
    cpu_span: float,
    limit_ms: float,
) -> dict[str, Any]:
    """Lag percentiles and rates of the frames scheduled in ``window`` (a frame never
    emitted is infinitely late), and the relay's CPU per emitted commit."""
    start, end = window
    span = end - start
    in_window = (sent_at >= start) & (sent_at < end)
    scheduled = int(in_window.sum())
    received = np.full(sent_at.shape, np.inf)
    for key, t in output.at.items():
        h, k = index[key]
        received[h, k] = t
    lags = (received[in_window] - sent_at[in_window]) * 1000.0
    missing = int(np.isinf(lags).sum())
    emitted = sum(1 for t in output.times if start <= t < end)

    def pct(q: float) -> float | None:
        if not scheduled:
            return None
        value = float(np.percentile(lags, q, method="higher"))
        return round(value, 1) if math.isfinite(value) else None

    p99 = pct(99)
    per_s = emitted / span
    return {
        "offered_per_s": rate,
        "scheduled": scheduled,
        "scheduled_per_s": round(scheduled / span, 1),
        "emitted_per_s": round(per_s, 1),
        "missing": missing,
        "lag_ms": {"p50": pct(50), "p90": pct(90), "p99": p99, "max": pct(100)},
        "min_lag_ms": round(float(lags.min()), 3) if scheduled else None,
        "meets_lag_limit": p99 is not None and p99 <= limit_ms and missing == 0,
        "relay_cpu_cores": round(cpu_s / cpu_span, 3),
        "relay_cpu_ms_per_commit": round(1000 * cpu_s / (per_s * cpu_span), 3) if emitted else None,
    }


async def _drain(hosts: Child, output: Output, timeout: float) -> None:
    """Wait until the relay has emitted every frame released so far, or made no
    progress for a few seconds, or ``timeout`` has passed."""
    released = int((await hosts.ask({"cmd": "status"}))["released"])
    deadline = time.monotonic() + timeout
    last, still = len(output.at), time.monotonic()
    while len(output.at) < released and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        if len(output.at) != last:
            last, still = len(output.at), time.monotonic()
        elif time.monotonic() - still > 5.0:
            return


async def _prime(config: RelayBenchConfig, hosts: Child, output: Output, accounts: int) -> float:
    """Send each account's first commit (the first ``accounts`` frames, round-robin)
    at ``prime_rate`` and wait until the relay has emitted them: the relay resolves each
    DID once, which is start-up work, not the steady state the steps measure. Returns
    the seconds from the first send to the last emission."""
    start = float((await hosts.ask({"cmd": "rate", "rate": config.prime_rate}))["t"])
    await asyncio.sleep(accounts / config.prime_rate)
    while int((await hosts.ask({"cmd": "status"}))["released"]) < accounts:
        await asyncio.sleep(0.01)
    await hosts.ask({"cmd": "rate", "rate": 0})
    await _drain(hosts, output, timeout=120.0)
    return max(output.times, default=start) - start


async def _consume(url: str, output: Output, index: dict[tuple[str, str], tuple[int, int]]) -> None:
    ws_url = url.replace("http://", "ws://", 1) + "/xrpc/com.atproto.sync.subscribeRepos"
    async with connect(ws_url, compression=None, max_size=None, ping_interval=None) as ws:
        async for frame in ws:
            if isinstance(frame, bytes):
                output.take(frame, time.monotonic(), index)


def _profile_top(path: Path, count: int = 25) -> list[dict[str, Any]]:
    """The functions the relay spent most of its own time in (cProfile ``tottime``)."""
    stats = pstats.Stats(str(path))
    rows = []
    total = stats.total_tt  # type: ignore[attr-defined]
    for (file, line, name), (_, calls, tt, ct, _) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append((tt, ct, calls, f"{Path(file).name}:{line}:{name}"))
    rows.sort(reverse=True)
    return [
        {"function": f, "tottime_s": round(tt, 3), "share": round(tt / total, 3),
         "cumtime_s": round(ct, 3), "calls": n}
        for tt, ct, n, f in rows[:count]
    ]  # fmt: skip


@dataclass(frozen=True)
class _Sample:
    """CPU seconds so far of the relay (tree), the hosts, this harness, the directory
    and the whole machine, at monotonic time ``t``."""

    t: float
    relay: float
    hosts: float
    harness: float
    directory: float
    machine: float
    relay_rss: int
    relay_processes: int
    relay_per_process: dict[int, float]

    @classmethod
    def take(cls, relay: Child, hosts: Child, directory: Child) -> _Sample:
        tree = usage(relay.pid)
        return cls(
            time.monotonic(),
            tree.cpu_s,
            usage(hosts.pid).cpu_s,
            time.process_time(),
            usage(directory.pid).cpu_s,
            machine_busy_s(),
            tree.rss_bytes,
            tree.processes,
            tree.per_process,
        )


async def _step(
    config: RelayBenchConfig,
    rate: float,
    *,
    hosts: Child,
    relay: Child,
    relay_url: str,
    directory: Child,
    output: Output,
    index: dict[tuple[str, str], tuple[int, int]],
    work: Path,
) -> dict[str, Any]:
    """Offer ``rate`` for warm-up + measured seconds, wait for the relay to catch up,
    and account for the frames scheduled in the measured window."""
    m0 = await _metrics(relay_url)
    released0 = int((await hosts.ask({"cmd": "status"}))["released"])
    start = float((await hosts.ask({"cmd": "rate", "rate": rate}))["t"])
    await asyncio.sleep(config.warmup)
    s0 = _Sample.take(relay, hosts, directory)
    await asyncio.sleep(config.seconds)
    s1 = _Sample.take(relay, hosts, directory)
    end = float((await hosts.ask({"cmd": "rate", "rate": 0}))["t"])
    await _drain(hosts, output, timeout=60.0)
    released = int((await hosts.ask({"cmd": "status"}))["released"]) - released0
    m1 = await _metrics(relay_url)
    await hosts.ask({"cmd": "times", "path": str(work / "sent.npy")})
    step = _step_result(
        rate=rate,
        window=(start + config.warmup, end),
        sent_at=np.load(work / "sent.npy"),
        index=index,
        output=output,
        cpu_s=s1.relay - s0.relay,
        cpu_span=s1.t - s0.t,
        limit_ms=config.lag_limit_ms,
    )
    span = s1.t - s0.t
    ours = (s1.relay - s0.relay) + (s1.hosts - s0.hosts) + (s1.harness - s0.harness)
    ours += s1.directory - s0.directory
    verified = int(m1.get("verified", 0)) - int(m0.get("verified", 0)) if m0 and m1 else None
    drops0 = _dropped(m0)
    step.update(
        relay_rss_mib=round(s1.relay_rss / MIB, 1),
        relay_processes=s1.relay_processes,
        # the main process first, then its workers (if any)
        relay_cpu_cores_by_process=[
            round((cpu - s0.relay_per_process.get(pid, 0.0)) / span, 3)
            for pid, cpu in s1.relay_per_process.items()
        ],
        hosts_cpu_cores=round((s1.hosts - s0.hosts) / span, 3),
        harness_cpu_cores=round((s1.harness - s0.harness) / span, 3),
        machine_busy_cores=round((s1.machine - s0.machine) / span, 3),
        neighbours_cpu_cores=round((s1.machine - s0.machine - ours) / span, 3),
        released=released,
        metrics_verified=verified,
        metrics_dropped={
            k: v - drops0.get(k, 0) for k, v in _dropped(m1).items() if v - drops0.get(k, 0)
        },
    )
    return step


async def run_async(config: RelayBenchConfig) -> dict[str, Any]:
    """Measure (see the module docstring); returns the result as JSON-ready values.

    SIGTERM cancels the run as Ctrl-C does: the child processes are stopped on the way
    out either way."""
    main = asyncio.current_task()
    if main is not None:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main.cancel)
    spec = config.spec()
    t0 = time.perf_counter()
    fixture = ensure_fixture(spec, config.cache)
    build_s = time.perf_counter() - t0
    _log(config, f"fixture ready in {build_s:.1f} s: {fixture}")
    index = _index(fixture, spec.hosts, spec.commits * spec.accounts)
    with contextlib.ExitStack() as stack:
        if config.work_dir is None:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="plaza-bench-")))
        else:
            work = config.work_dir
            work.mkdir(parents=True, exist_ok=True)
            for old in ("dir", "relay"):
                if (work / old).exists():
                    raise BenchProcessError(f"{work / old} exists: give an empty --work-dir")
        children: list[Child] = []
        consumer: asyncio.Task[None] | None = None
        try:
            argv = [sys.executable, "-m", "plaza.bench.relay_hosts", str(fixture)]
            argv += [str(spec.hosts), str(spec.commits * spec.accounts)]
            hosts = await Child.start("hosts", argv, work / "hosts.log", lines=True)
            children.append(hosts)
            urls: list[str] = (await hosts.read())["urls"]
            argv = [sys.executable, "-m", "plaza.bench.relay_directory", str(work / "dir")]
            argv.append(str(2 * spec.hosts * spec.accounts + 100))
            (work / "dir").mkdir()
            directory = await Child.start("directory", argv, work / "directory.log", lines=True)
            children.append(directory)
            directory_url: str = (await directory.read(60.0))["url"]
            t1 = time.perf_counter()
            registered = await _register(directory_url, urls, fixture, spec.accounts)
            register_s = time.perf_counter() - t1
            _log(config, f"{registered} DIDs registered in {register_s:.1f} s")
            port = free_port()
            relay_url = f"http://127.0.0.1:{port}"
            argv = _relay_argv(config, port, work / "relay", directory_url)
            for url in urls:
                argv += ["--crawl", url]
            relay = await Child.start(config.target, argv, work / "relay.log")
            children.append(relay)
            await relay.wait_healthy(f"{relay_url}/_health")
            output = Output()
            consumer = asyncio.create_task(_consume(relay_url, output, index))
            deadline = time.monotonic() + 60.0
            while min((await hosts.ask({"cmd": "status"}))["subscribers"]) < 1:
                if time.monotonic() > deadline or consumer.done():
                    raise BenchProcessError("the relay did not subscribe to every host in 60 s")
                await asyncio.sleep(0.1)
            _log(config, f"{config.target} subscribed to {spec.hosts} hosts")
            cold_s = await _prime(config, hosts, output, spec.hosts * spec.accounts)
            _log(config, f"every account seen once: {cold_s:.1f} s")
            steps = []
            for rate in config.rates:
                step = await _step(
                    config,
                    rate,
                    hosts=hosts,
                    relay=relay,
                    relay_url=relay_url,
                    directory=directory,
                    output=output,
                    index=index,
                    work=work,
                )
                steps.append(step)
                lag = step["lag_ms"]
                _log(
                    config,
                    f"offered {rate:g}/s: emitted {step['emitted_per_s']}/s, p50 {lag['p50']} ms, "
                    f"p99 {lag['p99']} ms, missing {step['missing']}, "
                    f"relay {step['relay_cpu_cores']} cores, "
                    f"neighbours {step['neighbours_cpu_cores']} cores",
                )
            final = await _metrics(relay_url)
            peak = peak_rss(relay.pid)
            status = (await hosts.ask({"cmd": "status"}))["released"]
        finally:
            if consumer is not None:
                consumer.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await consumer
            for child in reversed(children):
                if child.name == "hosts" and child.proc.returncode is None:
                    with contextlib.suppress(BenchProcessError, OSError, ValueError):
                        assert child.proc.stdin is not None
                        child.proc.stdin.write(b'{"cmd": "stop"}\n')
                        await child.proc.stdin.drain()
                await child.stop()
    return _summary(
        config=config,
        spec=spec,
        steps=steps,
        output=output,
        final=final,
        peak=peak,
        released=status,
        build_s=build_s,
        register_s=register_s,
        first_seen_s=cold_s,
        registered=registered,
    )


def _summary(
    *,
    config: RelayBenchConfig,
    spec: FixtureSpec,
    steps: list[dict[str, Any]],
    output: Output,
    final: dict[str, Any],
    peak: int,
    released: int,
    build_s: float,
    register_s: float,
    registered: int,
    first_seen_s: float,
) -> dict[str, Any]:
    passing = [s for s in steps if s["meets_lag_limit"]]
    best = max(passing, key=lambda s: s["offered_per_s"]) if passing else None
    result: dict[str, Any] = {
        "verified_commits_per_s": best["emitted_per_s"] if best else None,
        "p99_lag_ms": best["lag_ms"]["p99"] if best else None,
        "rss_mib": round(max([peak / MIB] + [s["relay_rss_mib"] for s in steps]), 1),
        "hosts": spec.hosts,
        "sustained": {
            "offered_per_s": best["offered_per_s"] if best else None,
            "lag_limit_ms": config.lag_limit_ms,
            "meaning": "the highest offered rate whose p99 lag is within the limit, "
            "every frame emitted",
        },
        "capacity_commits_per_s": max((s["emitted_per_s"] for s in steps), default=None),
        "target": config.target,
        "relay_args": list(config.relay_args),
        "accounts": spec.hosts * spec.accounts,
        "records_per_account": spec.records,
        "seconds_per_step": config.seconds,
        "warmup_s": config.warmup,
        "steps": steps,
        "frames_released": released,
        "frames_emitted": len(output.at),
        "emitted_not_sent": output.unknown,
        "duplicates": output.duplicates,
        "output_kinds": output.kinds,
        "relay_dropped_total": _dropped(final),
        "relay_verified_total": final.get("verified"),
        "fixture_build_s": round(build_s, 1),
        "register_s": round(register_s, 1),
        "first_commit_of_every_account_s": round(first_seen_s, 2),
        "dids_registered": registered,
    }
    if config.profile is not None and config.profile.exists():
        result["profile_top"] = _profile_top(config.profile)
    return result


def run(config: RelayBenchConfig) -> dict[str, Any]:
    """:func:`run_async` in a fresh event loop; raises :class:`BenchProcessError` when a
    process fails or the run is stopped (SIGTERM)."""
    try:
        return asyncio.run(run_async(config))
    except asyncio.CancelledError as exc:
        raise BenchProcessError("the run was stopped; its processes are stopped too") from exc
