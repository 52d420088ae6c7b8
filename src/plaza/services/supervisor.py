"""Run several services as one OS process each, and watch over them.

Theory of operation. A :class:`Supervisor` starts its children one OS process each, and
starts each only once the children it comes after answer their health URLs (by default
the one before it in the order given), so every service finds the ones it depends on
already serving; children that do not wait on each other start together. A child that
exits during start-up, or does not answer by the start-up deadline, fails the start
with a :class:`StartupError` naming it and quoting the end of its log. Once all are
up, :meth:`Supervisor.watch` reports each child that exits on its own and leaves the
others running, until a stop signal arrives or no child is left. :meth:`Supervisor.stop`
then sends every running child one SIGTERM (``plaza serve`` answers it by finishing
in-flight requests and closing its stores), waits up to the grace period, and kills
what is left with SIGKILL.

Signals. While it is entered, the supervisor takes SIGINT, SIGTERM and SIGHUP (a stop
request; a second one during the stop skips the grace period) and SIGCHLD with
handlers that only note them; :func:`signal.set_wakeup_fd` writes each onto a pipe
that the supervisor waits on with :func:`select.select`. A signal or a child's exit
wakes it at once: no threads, and no timer except the health polls at start-up.

Restarts. With a :class:`Backoff`, a child that exits on its own is started again after
a pause that doubles with each quick failure (1 s, 2 s, 4 s ... up to 30 s by default)
and falls back to the first pause once the child had run long enough before it died.
A child the ``held`` predicate names (an operator stopped it on purpose) is left down,
and started again once the predicate no longer names it (asked every second).
A restarted child is not waited for: it rejoins as soon as it runs.

Process layout. Each child runs in its own session, without a controlling terminal,
so Ctrl-C in the terminal reaches the supervisor alone and each child gets exactly
one stop request from it (``plaza serve`` takes a second request as "stop now").
Each child's standard output and error go to its own log file.

No orphans. On Linux each child is started with ``prctl(PR_SET_PDEATHSIG, SIGTERM)``,
set between fork and exec, so if the supervisor dies without stopping its children
(SIGKILL, a crash) the kernel sends each of them SIGTERM and they stop as gracefully
as on Ctrl-C; a child whose supervisor died before that call exits at once. The
signal follows the thread that started the child, so children are started from the
supervisor's main thread only. On other systems the call does not exist and children
outlive a killed supervisor.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Final

import httpx

from plaza.services.errors import ServiceError

STARTUP_SECONDS: Final = 60.0
"""How long a child may take to answer its health URL after it is started."""

GRACE_SECONDS: Final = 20.0
"""How long children may take to stop after SIGTERM before they get SIGKILL (longer
than ``plaza serve``'s own graceful shutdown, so a stopping server is not cut short)."""

LOG_TAIL_LINES: Final = 20
_HEALTH_POLL_SECONDS: Final = 0.1
_HELD_POLL_SECONDS: Final = 1.0
_STOP_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_PR_SET_PDEATHSIG: Final = 1

_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


class StartupError(ServiceError):
    """A child exited, or did not become healthy, while the supervisor started it."""

    code = "StartupFailed"

    def __init__(self, message: str, *, name: str) -> None:
        super().__init__(message)
        self.name = name


@dataclass(frozen=True)
class ChildSpec:
    """One service to run: its name, full command line, health URL and log file, and
    the environment variables it gets on top of the supervisor's.

    The supervisor counts the child as started once ``GET health_url`` answers 200, or,
    without a health URL (a worker that serves no HTTP), once it is running.
    """

    name: str
    argv: tuple[str, ...]
    health_url: str | None
    log_path: Path
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    after: tuple[str, ...] | None = None
    """The children that must be healthy before this one starts; None: the one before
    it in the supervisor's list (strict order)."""


@dataclass(frozen=True)
class Backoff:
    """When a child that exited on its own starts again: after ``first_s``, doubling
    with each exit up to ``max_s``; back to ``first_s`` once it had run ``reset_after_s``."""

    first_s: float = 1.0
    max_s: float = 30.0
    reset_after_s: float = 60.0

    def next_delay(self, last_delay: float | None, ran_s: float) -> float:
        """The pause before the next start, given the pause before the last one (None:
        it never restarted) and how long the child ran."""
        if last_delay is None or ran_s >= self.reset_after_s:
            return self.first_s
        return min(self.max_s, last_delay * 2)


@dataclass
class Child:
    """A started child: its process and what became of it."""

    spec: ChildSpec
    process: subprocess.Popen[bytes]
    log_offset: int
    stop_requested: bool = False
    killed: bool = False
    """It did not stop within the grace period and was sent SIGKILL."""
    started_at: float = field(default_factory=time.monotonic)
    restarts: int = 0
    """How many times it was started again after exiting on its own."""
    restart_at: float | None = None
    """When (monotonic) it is due to start again; None when no restart is scheduled."""
    last_delay: float | None = None
    held_down: bool = False
    """It exited while held: it starts again once no longer held."""

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines this child wrote to its log since it was started."""
        try:
            with self.spec.log_path.open("rb") as log:
                log.seek(self.log_offset)
                text = log.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.rstrip("\n").splitlines()[-lines:])


def describe_exit(returncode: int) -> str:
    """A returncode as people read it: ``exited with status 1``, ``killed by SIGKILL``."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with status {returncode}"


@dataclass
class _Wakeups:
    """The signals noted since the last :meth:`Supervisor._wait`."""

    stops: int = 0
    pending: list[int] = field(default_factory=list)


class Supervisor:
    """Start ``specs`` in order, one OS process each; watch them; stop them all.

    Use as a context manager (from the main thread: it installs signal handlers);
    leaving the context stops any child still running.

    Example::

        with Supervisor(specs) as sup:
            if sup.start():
                sup.watch(on_exit=lambda child: print(child.name, "exited"))
            sup.stop()
    """

    def __init__(
        self,
        specs: Sequence[ChildSpec],
        *,
        env: Mapping[str, str] | None = None,
        startup_seconds: float = STARTUP_SECONDS,
        grace_seconds: float = GRACE_SECONDS,
        restart: Backoff | None = None,
        held: Callable[[str], bool] | None = None,
    ) -> None:
        self.specs = list(specs)
        self.children: list[Child] = []
        self._env = dict(os.environ if env is None else env)
        self._startup_seconds = startup_seconds
        self._grace_seconds = grace_seconds
        self._restart = restart
        self._held = held or (lambda name: False)
        self._stops = 0
        self._reported: set[int] = set()  # pids whose exit was reported
        self._pipe: tuple[int, int] | None = None
        self._saved: dict[int, _Handler] = {}
        self._saved_wakeup = -1

    # -- signals ---------------------------------------------------------------

    def __enter__(self) -> Supervisor:
        r, w = os.pipe()
        os.set_blocking(r, False)
        os.set_blocking(w, False)
        self._pipe = (r, w)
        self._saved_wakeup = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
        for sig in (*_STOP_SIGNALS, signal.SIGCHLD):
            self._saved[sig] = signal.signal(sig, self._note)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.stop()
        finally:
            for sig, handler in self._saved.items():
                signal.signal(sig, handler)
            signal.set_wakeup_fd(self._saved_wakeup)
            if self._pipe is not None:
                for fd in self._pipe:
                    os.close(fd)
                self._pipe = None

    def _note(self, signum: int, frame: FrameType | None) -> None:
        if signum in _STOP_SIGNALS:
            self._stops += 1

    @property
    def stop_requested(self) -> bool:
        """A stop signal (SIGINT, SIGTERM, SIGHUP) has arrived."""
        return self._stops > 0

    def _wait(self, timeout: float | None) -> None:
        """Block until a signal arrives (a child's exit included), or ``timeout`` passes."""
        assert self._pipe is not None, "enter the supervisor first"
        r = self._pipe[0]
        ready, _, _ = select.select([r], [], [], timeout)
        if ready:
            with contextlib.suppress(BlockingIOError):
                while os.read(r, 512):
                    pass

    # -- starting ----------------------------------------------------------------

    def start(self) -> bool:
        """Start every child once those it comes ``after`` are healthy (by default the
        one before it), several at a time when they do not wait on each other.

        Returns False if a stop signal arrived first (the children already started
        keep running until :meth:`stop`). Raises :class:`StartupError` if a child
        exits or misses the start-up deadline; the others are left to :meth:`stop`.
        """
        order = {spec.name: i for i, spec in enumerate(self.specs)}
        waits: dict[str, set[str]] = {}
        for i, spec in enumerate(self.specs):
            if spec.after is not None:
                waits[spec.name] = set(spec.after) & set(order)
            else:
                waits[spec.name] = {self.specs[i - 1].name} if i else set()
        pending = list(self.specs)
        starting: dict[str, float] = {}  # name -> start-up deadline
        healthy: set[str] = set()
        try:
            while pending or starting:
                if self.stop_requested:
                    return False
                ready = [p for p in pending if waits[p.name] <= healthy]
                if not ready and not starting:
                    names = ", ".join(p.name for p in pending)
                    raise StartupError(
                        f"{names} wait for children that never start", name=pending[0].name
                    )
                for spec in ready:
                    pending.remove(spec)
                    self.children.append(self._spawn(spec))
                    starting[spec.name] = time.monotonic() + self._startup_seconds
                for child in [c for c in self.children if c.name in starting]:
                    if self._check_start(child, starting[child.name]):
                        healthy.add(child.name)
                        del starting[child.name]
                if starting:
                    self._wait(_HEALTH_POLL_SECONDS)
        finally:
            self.children.sort(key=lambda c: order[c.name])
        return True

    def _spawn(self, spec: ChildSpec) -> Child:
        process, offset = self._popen(spec)
        return Child(spec, process, offset)

    def _popen(self, spec: ChildSpec) -> tuple[subprocess.Popen[bytes], int]:
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        with spec.log_path.open("ab") as log:
            offset = log.tell()
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            log.write(f"--- {stamp} started: {' '.join(spec.argv)}\n".encode())
            log.flush()
            try:
                process = subprocess.Popen(
                    spec.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env={**self._env, **spec.env},
                    start_new_session=True,
                    # The supervisor runs no threads, so the fork-to-exec window is safe.
                    preexec_fn=_die_with_parent(),  # noqa: PLW1509
                )
            except (OSError, subprocess.SubprocessError) as exc:
                raise StartupError(
                    f"{spec.name} could not be started: {exc}", name=spec.name
                ) from exc
        return process, offset

    def _check_start(self, child: Child, deadline: float) -> bool:
        """Whether ``child`` is healthy now; raises :class:`StartupError` if it exited
        or the deadline has passed."""
        returncode = child.process.poll()
        if returncode is not None:
            self._reported.add(child.pid)
            raise StartupError(
                f"{child.name} {describe_exit(returncode)} while starting; the end of "
                f"{child.spec.log_path}:\n{child.log_tail()}",
                name=child.name,
            )
        if child.spec.health_url is None or _healthy(child.spec.health_url):
            return True
        if time.monotonic() > deadline:
            raise StartupError(
                f"{child.name} did not answer {child.spec.health_url} within "
                f"{self._startup_seconds:g} s; the end of {child.spec.log_path}:\n"
                f"{child.log_tail()}",
                name=child.name,
            )
        return False

    # -- watching ----------------------------------------------------------------

    def running(self) -> list[Child]:
        """The children still running (each exited one is reaped here)."""
        return [c for c in self.children if c.process.poll() is None]

    def watch(
        self,
        on_exit: Callable[[Child], None],
        on_restart: Callable[[Child], None] | None = None,
    ) -> None:
        """Wait until a stop signal arrives or no child is running (nor due to restart).

        ``on_exit`` is called once for each child that exits on its own meanwhile; the
        other children keep running. With a :class:`Backoff` the child is started again
        after its pause (unless ``held`` names it) and ``on_restart`` is called.
        """
        while not self.stop_requested:
            alive = self.running()
            now = time.monotonic()
            for child in self.children:
                if child.returncode is not None and child.pid not in self._reported:
                    self._reported.add(child.pid)
                    self._schedule(child, now)
                    on_exit(child)
            for child in self.children:
                if child.held_down and not self._held(child.name):
                    child.held_down = False
                    child.restart_at = now
                if child.restart_at is not None and child.restart_at <= now:
                    self._respawn(child)
                    alive.append(child)
                    if on_restart is not None:
                        on_restart(child)
            due = [c.restart_at for c in self.children if c.restart_at is not None]
            if any(c.held_down for c in self.children):
                due.append(now + _HELD_POLL_SECONDS)  # look at the hold again then
            elif not alive and not due:
                return
            self._wait(max(0.0, min(due) - time.monotonic()) if due else None)

    def _schedule(self, child: Child, now: float) -> None:
        if self._restart is None or child.stop_requested:
            return
        if self._held(child.name):
            child.held_down = True
            return
        delay = self._restart.next_delay(child.last_delay, now - child.started_at)
        child.last_delay = delay
        child.restart_at = now + delay

    def _respawn(self, child: Child) -> None:
        child.restart_at = None
        if self._held(child.name):
            child.held_down = True
            return
        try:
            child.process, child.log_offset = self._popen(child.spec)
        except StartupError:
            child.restart_at = time.monotonic() + (child.last_delay or 1.0)
            return
        child.started_at = time.monotonic()
        child.restarts += 1

    def pending_restart(self, child: Child) -> float | None:
        """Seconds until ``child`` starts again, or None if it is not due to."""
        if child.restart_at is None:
            return None
        return max(0.0, child.restart_at - time.monotonic())

    def died(self) -> list[Child]:
        """The children that exited without being asked to stop."""
        return [c for c in self.children if c.returncode is not None and not c.stop_requested]

    # -- stopping ----------------------------------------------------------------

    def stop(self) -> None:
        """Stop every running child: SIGTERM, then SIGKILL after the grace period
        (at once if another stop signal arrives meanwhile). Idempotent."""
        stops_before = self._stops
        for child in self.children:
            child.restart_at = None
            child.held_down = False
        for child in self.running():
            child.stop_requested = True
            with contextlib.suppress(ProcessLookupError):
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self._grace_seconds
        while self.running() and self._stops == stops_before:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._wait(left)
        for child in self.running():
            child.killed = True
            with contextlib.suppress(ProcessLookupError):
                child.process.kill()
            child.process.wait()

    def clean(self) -> bool:
        """Every child stopped on request, by itself, with status 0 (see :func:`stopped_clean`)."""
        return all(stopped_clean(c) for c in self.children)


def stopped_clean(child: Child) -> bool:
    """``child`` stopped on request, by itself, with status 0 — or, for a worker without
    a health URL, was ended by the stop's SIGTERM before it had set up its own handling
    of it (it was still starting: it had done nothing to finish)."""
    if not child.stop_requested or child.killed:
        return False
    if child.returncode == 0:
        return True
    return child.spec.health_url is None and child.returncode == -signal.SIGTERM


def _healthy(url: str) -> bool:
    """``GET url`` answers 200."""
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking the kernel to SIGTERM the child when this process dies
    (Linux); ``None`` where the call does not exist."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        if prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:  # the supervisor died before the call above
            os._exit(1)

    return preexec
