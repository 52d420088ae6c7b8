"""``plaza load``: simulated members sign up, post, follow and read against a running network.

Theory of operation. ``users`` members act concurrently (one asyncio task each, one
shared HTTP client). Each signs up first — ``com.atproto.server.createAccount`` at the
entryway, which chooses the host, or round-robin on the given PDSs — and then, until
``duration_s`` has passed since the start, repeats one action every ``think_s``
seconds, in turn: a post (``com.atproto.repo.createRecord`` of an
``app.bsky.feed.post``), a follow of another member who has signed up
(``app.bsky.graph.follow``), and a read of the home timeline
(``app.bsky.feed.getTimeline`` through the member's PDS, which forwards it to the app
view). A PDS without an app view answers the timeline with ``MethodNotImplemented``;
that member's reads then list their own posts on their PDS
(``com.atproto.repo.listRecords``) and the report says so. Every request is counted
in the step (``step_s`` seconds) in which it finished: its kind, and whether it failed
(with the XRPC error name). The accounts the load holds per step (those hosted when it
started plus its sign-ups so far) are the load the network's capacity is bought for.

The trace (:class:`Trace`) is written as CSV with one row per step; :mod:`plaza.network.
load_cost` prices it against the simulator's oracle. Passwords are random and never
printed.
"""

from __future__ import annotations

import asyncio
import csv
import itertools
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from plaza.errors import InvalidInputError

KINDS = ("signup", "post", "follow", "read")
POST = "app.bsky.feed.post"
FOLLOW = "app.bsky.graph.follow"


@dataclass(frozen=True)
class LoadPlan:
    """How many members, for how long, and where they sign up."""

    users: int
    duration_s: float
    entryway: str | None = None
    pds: tuple[str, ...] = ()
    think_s: float = 1.0
    step_s: float = 1.0
    handle_domain: str = "test"

    def __post_init__(self) -> None:
        if self.users < 1 or self.users > 10_000:
            raise InvalidInputError("--users must be between 1 and 10000")
        if not 0 < self.duration_s <= 86_400:
            raise InvalidInputError("--duration must be between 0 and 86400 seconds")
        if self.think_s <= 0 or self.step_s <= 0:
            raise InvalidInputError("--think and --step must be positive")
        if not self.entryway and not self.pds:
            raise InvalidInputError("give --entryway URL, or --pds URL to sign up on PDSs")


@dataclass
class Step:
    """What happened in one step: requests per kind, failures per XRPC error name, and
    the accounts the load held at its end."""

    ok: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    errors: dict[str, int] = field(default_factory=dict)
    accounts: int = 0

    @property
    def requests(self) -> int:
        return sum(self.ok.values()) + sum(self.errors.values())


@dataclass
class Trace:
    """The recorded load: one :class:`Step` per ``step_s`` seconds from ``start``."""

    step_s: float
    start: float
    base_accounts: int = 0
    started_at: float = 0.0  # Unix seconds at ``start``, for the timestamps
    steps: list[Step] = field(default_factory=list)
    fallback_reads: bool = False

    def at(self, t: float) -> Step:
        i = max(0, int((t - self.start) / self.step_s))
        while len(self.steps) <= i:
            prev = self.steps[-1].accounts if self.steps else self.base_accounts
            self.steps.append(Step(accounts=prev))
        return self.steps[i]

    def count(self, kind: str, t: float, error: str | None = None) -> None:
        s = self.at(t)
        if error is None:
            s.ok[kind] += 1
        else:
            s.errors[error] = s.errors.get(error, 0) + 1

    def signed_up(self, t: float) -> None:
        self.at(t)
        for s in self.steps[int((t - self.start) / self.step_s) :]:
            s.accounts += 1

    def accounts(self) -> list[int]:
        return [s.accounts for s in self.steps]

    def write(self, path: Path) -> None:
        """CSV: ``timestamp`` (ISO 8601, the step's start), ``requests``, one column per
        kind, ``errors`` and ``accounts``."""
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["timestamp", "requests", *KINDS, "errors", "accounts"])
            for i, s in enumerate(self.steps):
                ts = datetime.fromtimestamp(self.started_at + i * self.step_s, UTC)
                w.writerow(
                    [
                        ts.isoformat().replace("+00:00", "Z"),
                        s.requests,
                        *(s.ok[k] for k in KINDS),
                        sum(s.errors.values()),
                        s.accounts,
                    ]
                )

    def summary(self, elapsed_s: float) -> dict[str, Any]:
        ok = {k: sum(s.ok[k] for s in self.steps) for k in KINDS}
        errors: dict[str, int] = {}
        for s in self.steps:
            for name, n in s.errors.items():
                errors[name] = errors.get(name, 0) + n
        total = sum(ok.values()) + sum(errors.values())
        return {
            "seconds": round(elapsed_s, 3),
            "requests": total,
            "throughput_rps": round(total / elapsed_s, 3) if elapsed_s > 0 else 0.0,
            "ok": ok,
            "errors": dict(sorted(errors.items())),
            "error_rate": round(sum(errors.values()) / total, 6) if total else 0.0,
            "accounts": {"before": self.base_accounts, "after": self.steps[-1].accounts},
            "reads": "listRecords (no app view)" if self.fallback_reads else "getTimeline",
            "steps": len(self.steps),
        }


@dataclass
class _Member:
    handle: str
    password: str = field(repr=False)
    did: str = ""
    pds: str = ""
    jwt: str = field(repr=False, default="")
    posts: int = 0
    follows: set[str] = field(default_factory=set)
    timeline: bool = True


def _error(r: httpx.Response) -> str:
    try:
        return str(r.json().get("error") or f"HTTP{r.status_code}")
    except ValueError:
        return f"HTTP{r.status_code}"


def _pds_of(body: dict[str, Any], fallback: str) -> str:
    for s in body.get("didDoc", {}).get("service", []):
        if str(s.get("id", "")).endswith("#atproto_pds"):
            return str(s["serviceEndpoint"]).rstrip("/")
    return fallback


async def count_accounts(client: httpx.AsyncClient, pds: tuple[str, ...]) -> int:
    """Accounts the PDSs host (``com.atproto.sync.listRepos``, paged); 0 for one that
    does not answer."""
    total = 0
    for url in pds:
        cursor = None
        try:
            while True:
                params: dict[str, Any] = {"limit": 1000}
                if cursor:
                    params["cursor"] = cursor
                r = await client.get(f"{url}/xrpc/com.atproto.sync.listRepos", params=params)
                if r.status_code != 200:
                    break
                body = r.json()
                total += len(body.get("repos", []))
                cursor = body.get("cursor")
                if not cursor or not body.get("repos"):
                    break
        except httpx.HTTPError:
            continue
    return total


class LoadRun:
    """Runs a :class:`LoadPlan` (see the module docstring)."""

    def __init__(
        self,
        plan: LoadPlan,
        *,
        clock: Callable[[], float] = time.monotonic,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.plan = plan
        self.clock = clock
        self.progress = progress
        self.members: list[_Member] = []
        self._hosts = itertools.cycle(plan.pds) if plan.pds else None
        self.trace = Trace(plan.step_s, 0.0)

    async def _signup(self, client: httpx.AsyncClient, m: _Member) -> bool:
        plan = self.plan
        base = (plan.entryway or next(self._hosts or iter(()))).rstrip("/")
        r = await client.post(
            f"{base}/xrpc/com.atproto.server.createAccount",
            json={
                "handle": m.handle,
                "email": f"{m.handle.split('.')[0]}@example.com",
                "password": m.password,
            },
        )
        if r.status_code != 200:
            self.trace.count("signup", self.clock(), _error(r))
            return False
        body = r.json()
        m.did, m.jwt = body["did"], body["accessJwt"]
        m.pds = _pds_of(body, base)
        self.trace.count("signup", self.clock())
        self.trace.signed_up(self.clock())
        return True

    async def _act(self, client: httpx.AsyncClient, m: _Member, turn: int) -> None:
        auth = {"authorization": f"Bearer {m.jwt}"}
        kind = ("post", "follow", "read")[turn % 3]
        others = [o.did for o in self.members if o.did and o.did != m.did]
        if kind == "follow" and not [d for d in others if d not in m.follows]:
            kind = "post"
        if kind == "post":
            m.posts += 1
            r = await client.post(
                f"{m.pds}/xrpc/com.atproto.repo.createRecord",
                headers=auth,
                json={
                    "repo": m.did,
                    "collection": POST,
                    "record": {"$type": POST, "text": f"load post {m.posts} from {m.handle}",
                               "createdAt": _now_iso()},
                },
            )  # fmt: skip
        elif kind == "follow":
            subject = next(d for d in others if d not in m.follows)
            m.follows.add(subject)
            r = await client.post(
                f"{m.pds}/xrpc/com.atproto.repo.createRecord",
                headers=auth,
                json={
                    "repo": m.did,
                    "collection": FOLLOW,
                    "record": {"$type": FOLLOW, "subject": subject, "createdAt": _now_iso()},
                },
            )
        else:
            r = await self._read(client, m, auth)
        self.trace.count(kind, self.clock(), None if r.status_code == 200 else _error(r))

    async def _read(
        self, client: httpx.AsyncClient, m: _Member, auth: dict[str, str]
    ) -> httpx.Response:
        if m.timeline:
            r = await client.get(
                f"{m.pds}/xrpc/app.bsky.feed.getTimeline", headers=auth, params={"limit": 30}
            )
            if r.status_code != 501:
                return r
            m.timeline = False
            self.trace.fallback_reads = True
        return await client.get(
            f"{m.pds}/xrpc/com.atproto.repo.listRecords",
            params={"repo": m.did, "collection": POST, "limit": 30},
        )

    async def _member(self, client: httpx.AsyncClient, m: _Member, end: float) -> None:
        try:
            if not await self._signup(client, m):
                return
        except httpx.HTTPError as exc:
            self.trace.count("signup", self.clock(), type(exc).__name__)
            return
        turn = 0
        while self.clock() < end:
            try:
                await self._act(client, m, turn)
            except httpx.HTTPError as exc:
                self.trace.count("read", self.clock(), type(exc).__name__)
            turn += 1
            await asyncio.sleep(max(0.0, min(self.plan.think_s, end - self.clock())))

    async def _report(self, end: float) -> None:
        while self.clock() < end:
            await asyncio.sleep(min(5.0, max(0.0, end - self.clock())))
            if self.progress is not None:
                done = self.trace.summary(max(1e-9, self.clock() - self.trace.start))
                self.progress(
                    f"{done['seconds']:.0f}s: {done['accounts']['after']} accounts, "
                    f"{done['requests']} requests ({done['throughput_rps']} /s), "
                    f"{sum(done['errors'].values())} errors"
                )

    async def run(self) -> dict[str, Any]:
        """Sign up, act until the duration has passed; return the summary."""
        plan = self.plan
        suffix = secrets.token_hex(3)
        self.members = [
            _Member(f"load{i}-{suffix}.{plan.handle_domain}", secrets.token_urlsafe(18))
            for i in range(plan.users)
        ]
        async with httpx.AsyncClient(timeout=30) as client:
            base = await count_accounts(client, plan.pds)
            self.trace = Trace(
                plan.step_s, self.clock(), base_accounts=base, started_at=time.time()
            )
            self.trace.at(self.trace.start)
            end = self.trace.start + plan.duration_s
            reporter = asyncio.ensure_future(self._report(end))
            await asyncio.gather(*(self._member(client, m, end) for m in self.members))
            reporter.cancel()
        self.trace.at(end - 1e-9)
        return self.trace.summary(self.clock() - self.trace.start)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
