"""One app served by several processes on one port.

Theory of operation. :func:`run_workers` serves the app itself, on a socket bound with
``SO_REUSEPORT``; once it listens (and so the port is known, also when 0 was asked),
it starts ``workers - 1`` more processes (``spawn``: fresh interpreters, no state
copied from this one), each building the app anew from ``factory`` and binding the same
port with the same option. The kernel spreads new connections over every listening
process. Whatever the processes must share (a web client's session key) therefore lives
outside them, where ``factory`` finds it.

Stopping the first process (SIGINT, SIGTERM) stops the others, each finishing its
in-flight requests first. On Linux each other process also asks the kernel to SIGTERM
it when the first one dies, so none outlives a killed first process and keeps the port.
A process that exits on its own is not replaced: the rest go on serving.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from urllib.parse import urlsplit

from plaza.services.runner import GRACEFUL_SECONDS, ServedApp, run

_PR_SET_PDEATHSIG = 1

Factory = Callable[[int], ServedApp]
"""Builds the app to serve on a port (picklable: a module-level function or a
``functools.partial`` of one), with ``reuse_port`` set."""


def _die_with_parent(parent: int) -> None:
    if sys.platform.startswith("linux"):
        prctl = ctypes.CDLL(None, use_errno=True).prctl
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the first process died before the call above
        os._exit(1)


def _serve(factory: Factory, port: int, parent: int) -> None:
    _die_with_parent(parent)
    run([factory(port)])


def run_workers(
    factory: Factory,
    port: int,
    workers: int,
    *,
    on_ready: Callable[[list[str]], None] | None = None,
    first: ServedApp | None = None,
) -> None:
    """Serve ``factory(port)`` from ``workers`` processes until SIGINT or SIGTERM (see
    the module docstring); ``on_ready`` gets the URL once the first process listens.
    ``first``: this process's app, when it was already built with ``factory(port)``."""
    others: list[BaseProcess] = []

    def ready(urls: list[str]) -> None:
        bound = urlsplit(urls[0]).port
        assert bound is not None
        ctx = multiprocessing.get_context("spawn")
        for _ in range(workers - 1):
            proc = ctx.Process(target=_serve, args=(factory, bound, os.getpid()), daemon=True)
            proc.start()
            others.append(proc)
        if on_ready is not None:
            on_ready(urls)

    try:
        run([first or factory(port)], on_ready=ready)
    finally:
        for proc in others:
            proc.terminate()
        for proc in others:
            proc.join(GRACEFUL_SECONDS + 5)
            if proc.is_alive():
                proc.kill()
                proc.join()
