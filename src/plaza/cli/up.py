"""``plaza up``: the local Plaza network, each service in its own OS process.

The network is one table, :data:`SERVICES`: each entry is a ``plaza serve`` command,
its port offset from the port base and its health path. ``plaza up`` runs the entries
whose ``serve`` command exists (and whose prerequisites run) under a
:class:`~plaza.services.supervisor.Supervisor`, in table order.
"""

from __future__ import annotations

import ipaddress
import json
import os
import sys
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import typer
import typer.main

from plaza.cli import params, serve
from plaza.services.runner import url_for
from plaza.services.supervisor import (
    GRACE_SECONDS,
    Child,
    ChildSpec,
    StartupError,
    Supervisor,
    describe_exit,
)

DEFAULT_PORT_BASE = 2582


@dataclass(frozen=True)
class Network:
    """Where the local network lives: its data dir, listening host and port base."""

    data_dir: Path
    host: str
    port_base: int

    def url(self, name: str) -> str:
        """The URL the service called ``name`` in :data:`SERVICES` listens on."""
        return url_for(self.host, self.port_base + _SERVICE[name].offset)

    @property
    def loopback(self) -> bool:
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host == "localhost"


@dataclass(frozen=True)
class Service:
    """One entry of the network: ``plaza serve COMMAND --host H --port BASE+OFFSET
    --data-dir DATA_DIR/NAME`` plus the options ``extra`` gives, healthy once
    ``GET health_path`` answers 200. ``needs``: entries that must run for this one to."""

    name: str
    command: str
    offset: int
    health_path: str
    extra: Callable[[Network], list[str]]
    needs: tuple[str, ...] = ()


def _has(command: str) -> bool:
    """Whether this ``plaza`` has ``plaza serve COMMAND``."""
    return command in typer.main.get_group(serve.app).commands


def _pds(name: str) -> Callable[[Network], list[str]]:
    def extra(net: Network) -> list[str]:
        # The local network's services are all on loopback: forwarded calls may reach
        # them, as long as nothing but this machine can call in.
        private = ["--allow-private-proxy"] if net.loopback else []
        own = ["--directory", net.url("directory"), "--public-url", net.url(name)]
        # The app view runs whenever this plaza has it (it needs only what always runs).
        appview = ["--appview", net.url("appview")] if _has("appview") else []
        return [*own, *appview, *private]

    return extra


def _relay(net: Network) -> list[str]:
    crawl = ["--crawl", net.url("pds1"), "--crawl", net.url("pds2")]
    return ["--directory", net.url("directory"), *crawl]


def _archive(net: Network) -> list[str]:
    return ["--relay", net.url("relay"), "--directory", net.url("directory")]


def _appview(net: Network) -> list[str]:
    # The relay's combined firehose when there is a relay, else each PDS's own.
    names = ["relay"] if _has("relay") else ["pds1", "pds2"]
    sources = [arg for name in names for arg in ("--relay", net.url(name))]
    return [*sources, "--directory", net.url("directory"), "--public-url", net.url("appview")]


SERVICES: Final = (
    Service("directory", "directory", 0, "/_health", lambda net: []),
    Service("pds1", "pds", 1, "/xrpc/_health", _pds("pds1"), needs=("directory",)),
    Service("pds2", "pds", 2, "/xrpc/_health", _pds("pds2"), needs=("directory",)),
    Service("relay", "relay", 3, "/_health", _relay, needs=("directory", "pds1", "pds2")),
    Service("archive", "archive", 4, "/_health", _archive, needs=("directory", "relay")),
    Service("appview", "appview", 5, "/_health", _appview, needs=("directory", "pds1", "pds2")),
)
"""The local network, in start order. An entry runs only if its ``plaza serve``
command exists and every entry it needs runs."""

_SERVICE: Final = {s.name: s for s in SERVICES}
PORTS: Final = max(s.offset for s in SERVICES) + 1


def services(commands: Collection[str] | None = None) -> list[Service]:
    """The entries of :data:`SERVICES` that can run, in start order: those whose
    command is among ``commands`` (default: the ``plaza serve`` commands this
    ``plaza`` has) and whose ``needs`` run too."""
    if commands is None:
        commands = set(typer.main.get_group(serve.app).commands)
    chosen: list[Service] = []
    for service in SERVICES:
        names = {s.name for s in chosen}
        if service.command in commands and set(service.needs) <= names:
            chosen.append(service)
    return chosen


def child_spec(net: Network, service: Service) -> ChildSpec:
    """The command line, health URL and log file that run ``service`` in ``net``."""
    argv = (
        sys.executable, "-m", "plaza.cli", "serve", service.command,
        "--host", net.host,
        "--port", str(net.port_base + service.offset),
        "--data-dir", str(net.data_dir / service.name),
        *service.extra(net),
    )  # fmt: skip
    return ChildSpec(
        name=service.name,
        argv=argv,
        health_url=net.url(service.name) + service.health_path,
        log_path=net.data_dir / "logs" / f"{service.name}.log",
    )


def endpoints(net: Network, children: list[Child]) -> dict[str, Any]:
    """What DATA_DIR/endpoints.json holds for these started children."""
    kinds = {s.name: s.command for s in SERVICES}
    out: dict[str, Any] = {}
    for child in children:
        if kinds[child.name] == "pds":
            out.setdefault("pds", []).append(net.url(child.name))
        else:
            out[child.name] = net.url(child.name)
    out["pids"] = {c.name: c.pid for c in children}
    exited = {
        c.name: {"returncode": c.returncode, "status": describe_exit(c.returncode)}
        for c in children
        if c.returncode is not None
    }
    if exited:
        out["exited"] = exited
    return out


def _write_endpoints(net: Network, children: list[Child]) -> None:
    path = net.data_dir / "endpoints.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(endpoints(net, children), indent=2) + "\n")
    os.replace(tmp, path)


def up(
    data_dir_opt: str = typer.Option(".plaza", "--data-dir", help="Where every store lives."),
    port_base: int = typer.Option(
        DEFAULT_PORT_BASE,
        "--port-base",
        callback=lambda v: params.port_range(v, PORTS),
        help=f"Directory port; the other services take the next {PORTS - 1} "
        f"(all {PORTS} must be 1..65535).",
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
) -> None:
    """Start the local Plaza network, one OS process per service, until Ctrl-C.

    Starts, each as its own `plaza serve` process and in this order: the PLC
    directory on PORT_BASE, two independent hosting providers (each with its own
    store, blobs and signing keys) on PORT_BASE+1 and PORT_BASE+2, the relay on
    PORT_BASE+3 (crawling both PDSs), the archive on PORT_BASE+4 (following the
    relay) and the app view on PORT_BASE+5 (following the relay, or both PDSs when
    there is no relay; the PDSs forward app.bsky.* reads to it); the relay, the
    archive and the app view when this plaza has their serve commands. Each
    starts once the one before answers its health check. Data lives under
    DATA_DIR/NAME, each service's output in DATA_DIR/logs/NAME.log.

    Writes DATA_DIR/endpoints.json ({"directory": URL, "pds": [URL, URL], "relay":
    URL, "archive": URL, "appview": URL, "pids": {NAME: PID}}, and "exited": {NAME: {"returncode",
    "status"}} for services that ended) and prints how to point the atproto SDK at
    it. Handles ending in .test are accepted. PLAZA_PDS_ADMIN_PASSWORD, if set,
    reaches the PDSs through the environment.

    A service that dies is reported and the others keep running. Ctrl-C (or SIGTERM)
    asks every service to stop: each finishes its in-flight requests, flushes and
    closes its stores; one still running after the grace period is killed. Exits 0
    when every service stopped cleanly on request, 1 otherwise (a service that failed
    to start, died, or had to be killed). If plaza up itself is killed, its services
    get SIGTERM from the kernel (Linux) and stop too.

    Example:

    \b
        plaza up
        plaza up --data-dir /tmp/plaza --port-base 3582
    """
    net = Network(Path(data_dir_opt), host, port_base)
    chosen = services()
    net.data_dir.mkdir(parents=True, exist_ok=True)
    (net.data_dir / "endpoints.json").unlink(missing_ok=True)
    specs = [child_spec(net, s) for s in chosen]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    typer.echo(f"starting {', '.join(s.name for s in chosen)} (logs in {net.data_dir / 'logs'})")
    with Supervisor(specs, env=env) as sup:
        failed = False
        try:
            started = sup.start()
        except StartupError as exc:
            typer.echo(f"error: {exc.message}", err=True)
            started, failed = False, True
        if started:
            _write_endpoints(net, sup.children)
            _announce(net, specs, sup.children)

            def report(child: Child) -> None:
                _write_endpoints(net, sup.children)
                _report_exit(child)

            sup.watch(on_exit=report)
            if not sup.stop_requested:
                typer.echo("error: every service has stopped", err=True)
        sup.stop()
        if started:
            _write_endpoints(net, sup.children)
    for child in sup.children:
        if child.killed:
            typer.echo(
                f"error: {child.name} did not stop within {GRACE_SECONDS:g} s and was killed",
                err=True,
            )
    typer.echo("stopped; everything is saved under " + str(net.data_dir))
    if failed or not sup.clean():
        raise typer.Exit(1)


def _announce(net: Network, specs: list[ChildSpec], children: list[Child]) -> None:
    for spec, child in zip(specs, children, strict=True):
        typer.echo(
            f"{spec.name:<10} {net.url(spec.name)}   (data: {net.data_dir / spec.name}, "
            f"log: {spec.log_path}, pid {child.pid})"
        )
    typer.echo(f"endpoints  {net.data_dir / 'endpoints.json'}")
    typer.echo("")
    typer.echo("Point the atproto SDK at a PDS:")
    typer.echo(f"  from atproto import Client; c = Client(base_url='{net.url('pds1')}')")
    typer.echo(
        "  c.com.atproto.server.create_account({'handle': 'alice.test', "
        "'password': 'a long password'}); c.login('alice.test', 'a long password'); "
        "c.send_post('hello')"
    )
    typer.echo("")
    typer.echo("Ctrl-C stops the network.")


def _report_exit(child: Child) -> None:
    assert child.returncode is not None
    tail = child.log_tail(5)
    typer.echo(
        f"{child.name} (pid {child.pid}) {describe_exit(child.returncode)}; the other "
        f"services keep running. Its log: {child.spec.log_path}" + (f"\n{tail}" if tail else ""),
        err=True,
    )
