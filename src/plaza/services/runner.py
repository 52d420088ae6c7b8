"""Run ASGI apps with uvicorn: in the foreground until Ctrl-C, or in a background thread.

Theory of operation. :class:`AppGroup` binds every listening socket itself before
serving, so a taken port is a clear :class:`~plaza.services.errors.BindError` before
anything starts, port 0 picks a free port, and the real URLs are known the moment
serving begins. It runs one uvicorn server per app in a single event loop, with
uvicorn's own signal capture switched off (each server would otherwise take the
process's SIGINT for itself alone). The first stop request asks every server to
exit: each stops accepting, finishes its in-flight requests, and runs its app's
lifespan shutdown, where stores flush and close. A second request forces the exit.

Every server speaks HTTP through :class:`~plaza.services.limits.LimitedHttpProtocol`
(uvicorn's httptools protocol with bounded request heads), and sees each
connection's real peer address: ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are
read only when the app names trusted proxies, and then only from those addresses.

:func:`run` is the foreground form used by ``plaza serve ...`` (which ``plaza up``
starts once per service): it blocks until SIGINT or SIGTERM. :class:`ServerThread`
runs the same group in a thread, for tests and tools that need a real socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final

import uvicorn

from plaza.services.errors import BindError, ServiceError
from plaza.services.limits import DEFAULT_HEAD_LIMITS, HeadLimits, HeadStats, limited_protocol

GRACEFUL_SECONDS: Final = 10
_STARTUP_SECONDS: Final = 30


@dataclass(frozen=True)
class ServedApp:
    """One ASGI app and the address to serve it on (port 0: any free port).

    ``trusted_proxies``: addresses or networks (``10.0.0.0/8``) of reverse proxies whose
    ``X-Forwarded-For`` names the client; none by default, so the client is always the
    connection's peer.
    """

    name: str
    app: Any
    host: str = "127.0.0.1"
    port: int = 0
    trusted_proxies: tuple[str, ...] = ()
    ws_deflate: bool = True
    """Offer permessage-deflate to WebSocket clients (a firehose of CAR bytes gains
    little from it and pays for it on every frame to every subscriber)."""
    reuse_port: bool = False
    """Share the port with other processes serving the same app (``SO_REUSEPORT``: the
    kernel spreads new connections over them; see :mod:`plaza.services.workers`)."""


def url_for(host: str, port: int) -> str:
    """``http://host:port``, with IPv6 hosts in brackets."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def bind(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A listening-ready TCP socket on ``host:port``, or :class:`BindError` saying why not
    (``reuse_port``: other sockets with the option may bind the same port)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise BindError(f"cannot resolve listening host {host!r}: {exc}") from exc
    family, kind, proto, _, address = infos[0]
    # The protocol number matters: asyncio only sets TCP_NODELAY on accepted sockets
    # whose proto is IPPROTO_TCP, and without it small responses wait ~40 ms for
    # delayed ACKs.
    sock = socket.socket(family, kind, proto or socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise BindError(f"cannot listen on {url_for(host, port)}: {exc.strerror or exc}") from exc
    sock.set_inheritable(True)
    return sock


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the group handles signals for all of its servers at once


class AppGroup:
    """Several ASGI apps served together in one event loop."""

    def __init__(
        self,
        apps: Sequence[ServedApp],
        *,
        log_level: str = "warning",
        head_limits: HeadLimits = DEFAULT_HEAD_LIMITS,
    ) -> None:
        self.apps = list(apps)
        self._log_level = log_level
        self.head_stats = HeadStats()
        self._protocol = limited_protocol(head_limits, self.head_stats)
        self._servers: list[_Server] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._sockets: list[socket.socket] = []
        self._stopping: asyncio.Event | None = None
        self.urls: list[str] = []

    async def start(self) -> list[str]:
        """Bind, start every server, and return their URLs once all are accepting."""
        self._stopping = asyncio.Event()
        try:
            for served in self.apps:
                self._sockets.append(bind(served.host, served.port, reuse_port=served.reuse_port))
        except BindError:
            self._close_sockets()
            raise
        for served, sock in zip(self.apps, self._sockets, strict=True):
            config = uvicorn.Config(
                served.app,
                http=self._protocol,
                proxy_headers=bool(served.trusted_proxies),
                forwarded_allow_ips=list(served.trusted_proxies),
                log_level=self._log_level,
                access_log=False,
                lifespan="on",
                timeout_graceful_shutdown=GRACEFUL_SECONDS,
                ws_per_message_deflate=served.ws_deflate,
            )
            server = _Server(config)
            self._servers.append(server)
            self._tasks.append(asyncio.create_task(server.serve(sockets=[sock])))
        deadline = asyncio.get_running_loop().time() + _STARTUP_SECONDS
        while not all(s.started for s in self._servers):
            failed = [a.name for a, t in zip(self.apps, self._tasks, strict=True) if t.done()]
            if failed or asyncio.get_running_loop().time() > deadline:
                with contextlib.suppress(ServiceError):
                    await self.shutdown()
                raise ServiceError(f"{', '.join(failed) or 'a service'} failed to start")
            await asyncio.sleep(0.01)
        pairs = zip(self.apps, self._sockets, strict=True)
        self.urls = [url_for(a.host, sock.getsockname()[1]) for a, sock in pairs]
        return self.urls

    def request_stop(self) -> None:
        """Ask every server to finish; a second request stops without waiting."""
        if self._stopping is not None and self._stopping.is_set():
            for server in self._servers:
                server.force_exit = True
        if self._stopping is not None:
            self._stopping.set()
        for server in self._servers:
            server.should_exit = True

    async def wait(self) -> None:
        """Return when a stop was requested or any server ended on its own."""
        assert self._stopping is not None, "start() first"
        stop = asyncio.create_task(self._stopping.wait())
        await asyncio.wait([stop, *self._tasks], return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()

    async def shutdown(self) -> None:
        """Stop every server gracefully and wait for them (idempotent)."""
        for server in self._servers:
            server.should_exit = True
        results = await asyncio.gather(*self._tasks, return_exceptions=True)
        self._close_sockets()
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise ServiceError(f"a service stopped with an error: {errors[0]!r}") from errors[0]

    def _close_sockets(self) -> None:
        for sock in self._sockets:
            sock.close()


def run(
    apps: Sequence[ServedApp],
    *,
    on_ready: Callable[[list[str]], None] | None = None,
    log_level: str = "warning",
) -> None:
    """Serve ``apps`` in the foreground until SIGINT or SIGTERM, then shut down cleanly.

    ``on_ready`` receives the URLs (in the order of ``apps``) once every app accepts
    connections. Raises :class:`BindError` if an address is taken.
    """

    async def main() -> None:
        group = AppGroup(apps, log_level=log_level)
        urls = await group.start()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, group.request_stop)
        try:
            if on_ready is not None:
                on_ready(urls)
            await group.wait()
        finally:
            await group.shutdown()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(main())


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop when it is installed (``uvicorn[standard]`` brings it), else
    asyncio's. Serving through :meth:`uvicorn.Server.serve` skips uvicorn's own loop
    set-up, so the choice is made here; on uvloop the PDS spends about a tenth less CPU
    per request."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


class ServerThread:
    """Serve apps from a background thread; a context manager yielding their URLs.

    Example::

        with ServerThread([ServedApp("directory", app)]) as (url,):
            httpx.get(url + "/_health")
    """

    def __init__(
        self, apps: Sequence[ServedApp], *, head_limits: HeadLimits = DEFAULT_HEAD_LIMITS
    ) -> None:
        self._group = AppGroup(apps, head_limits=head_limits)
        self.head_stats = self._group.head_stats
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._main, name="plaza-server", daemon=True)

    def _main(self) -> None:
        async def body() -> None:
            self._loop = asyncio.get_running_loop()
            try:
                await self._group.start()
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                self._error = exc
                return
            finally:
                self._ready.set()
            await self._group.wait()
            await self._group.shutdown()

        asyncio.run(body())

    def __enter__(self) -> list[str]:
        self._thread.start()
        self._ready.wait(_STARTUP_SECONDS)
        if self._error is not None:
            raise self._error
        if not self._group.urls:
            raise ServiceError("servers did not start in time")
        return self._group.urls

    def stop(self) -> None:
        """Stop gracefully and wait for the thread."""
        if self._loop is not None and self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop already ended
                self._loop.call_soon_threadsafe(self._group.request_stop)
        self._thread.join(GRACEFUL_SECONDS + 5)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
