"""``plaza up``: the local Plaza network, each service in its own OS process.

The network is one table, :data:`plaza.network.processes.SERVICES`. ``plaza up`` founds
the network on first start (:mod:`plaza.network.genesis`), then runs the entries whose
command exists (and whose prerequisites run) under a
:class:`~plaza.services.supervisor.Supervisor`, in table order, restarting a service
that dies unless ``plaza chaos kill`` stopped it on purpose.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import secrets
import time
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import typer
import typer.main

from plaza.cli import agents, dao, params, serve
from plaza.errors import PlazaError
from plaza.network.layout import HOSTS, Timings
from plaza.network.processes import (
    PORTS,
    SERVICES,
    Network,
    Service,
)
from plaza.network.processes import child_spec as _child_spec
from plaza.network.processes import service as _service
from plaza.network.processes import services as _services
from plaza.services.supervisor import (
    GRACE_SECONDS,
    Backoff,
    Child,
    ChildSpec,
    StartupError,
    Supervisor,
    describe_exit,
    stopped_clean,
)

if TYPE_CHECKING:
    from plaza.network.genesis import Founded

__all__ = ["PORTS", "SERVICES", "Network", "Service", "child_spec", "endpoints", "services", "up"]

DEFAULT_PORT_BASE: Final = 2582
_GROUPS: Final = {"serve": serve.app, "dao": dao.app, "agents": agents.app}


@functools.cache
def options(command: tuple[str, ...]) -> frozenset[str] | None:
    """The options ``plaza COMMAND...`` takes, or None if this ``plaza`` lacks it."""
    group = _GROUPS.get(command[0])
    if group is None or len(command) != 2:
        return None
    found = typer.main.get_group(group).commands.get(command[1])
    if found is None:
        return None
    return frozenset(opt for param in found.params for opt in param.opts)


def services(
    commands: Collection[str] | None = None, indexers: int = 0, labeler_workers: int = 0
) -> list[Service]:
    """The entries that can run, in start order. ``commands``: the ``plaza serve``
    commands to assume (default: those this ``plaza`` has; ``plaza dao serve`` and
    ``plaza agents run`` always exist); ``indexers`` and ``labeler_workers``: app view
    indexers and labeler workers on the bus."""
    if commands is None:
        return _services(options, indexers, labeler_workers)
    given = set(commands)

    def assumed(command: tuple[str, ...]) -> Collection[str] | None:
        if command[0] == "serve":
            return (options(command) or frozenset()) if command[1] in given else None
        return options(command)

    return _services(assumed, indexers, labeler_workers)


def child_spec(net: Network, service: Service) -> ChildSpec:
    """The command line, environment, health URL and log file that run ``service``."""
    return _child_spec(net, service, options)


def endpoints(
    net: Network, children: list[Child], contracted: Collection[str] = ()
) -> dict[str, Any]:
    """What DATA_DIR/endpoints.json holds for these started children: each HTTP
    service's URL by name, ``pds`` (the running PDSs of providers under contract),
    ``hosts`` (every PDS by name), ``labeler_did``, ``ledger``, ``pids`` and ``exited``."""
    out: dict[str, Any] = {}
    live = {c.name for c in children if c.returncode is None}
    for child in children:
        service = _service(child.name)
        if service.offset is None:
            continue
        if service.kind == "pds":
            out.setdefault("hosts", {})[child.name] = net.url(child.name)
            if child.name in live and (not contracted or child.name in contracted):
                out.setdefault("pds", []).append(net.url(child.name))
        else:
            out[child.name] = net.url(child.name)
    out.setdefault("pds", [])
    if "labeler" in out and net.labeler_did:
        out["labeler_did"] = net.labeler_did
    out["ledger"] = net.ledger
    out["pids"] = {c.name: c.pid for c in children}
    exited = {
        c.name: {"returncode": c.returncode, "status": describe_exit(c.returncode)}
        for c in children
        if c.returncode is not None
    }
    if exited:
        out["exited"] = exited
    return out


def _write_endpoints(net: Network, children: list[Child], contracted: Collection[str]) -> None:
    path = net.layout.endpoints
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(endpoints(net, children, contracted), indent=2) + "\n")
    os.replace(tmp, path)


def _secrets() -> dict[str, str]:
    """A fresh admin password per PDS (or PLAZA_PDS_ADMIN_PASSWORD for all) and the
    market's operator token."""
    shared = os.environ.get("PLAZA_PDS_ADMIN_PASSWORD")
    out = {f"pds{n}": shared or secrets.token_urlsafe(24) for n in range(1, HOSTS + 1)}
    out["market"] = os.environ.get("PLAZA_MARKET_TOKEN") or secrets.token_urlsafe(24)
    return out


def _found(net: Network) -> Founded:
    from plaza.network.genesis import genesis  # the DAO and the market: only when starting

    hosts = [net.url(f"pds{n}") for n in range(1, HOSTS + 1)]
    return genesis(
        net.layout,
        hosts,
        net.timings,
        now_ms=int(time.time() * 1000),
        db=net.db("ledger"),
        labeler=net.url("labeler") if options(("serve", "labeler")) is not None else None,
    )


def up(
    *,
    data_dir_opt: str = typer.Option(".plaza", "--data-dir", help="Where every store lives."),
    port_base: int = typer.Option(
        DEFAULT_PORT_BASE,
        "--port-base",
        callback=lambda v: params.port_range(v, PORTS),
        help=f"Directory port; the other services take the next {PORTS - 1} "
        f"(all {PORTS} must be 1..65535).",
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    postgres: str | None = typer.Option(
        None,
        "--postgres",
        help="Put every store on this PostgreSQL server (postgresql://...; each in its own "
        "schema, named after ?schema=PREFIX, default plaza_NAME).",
    ),
    epoch: int = typer.Option(
        120, "--epoch", min=1, help="Seconds per market epoch (set at genesis)."
    ),
    probe_interval: int = typer.Option(
        10, "--probe-interval", min=1, help="Seconds between probe rounds (the probe window)."
    ),
    dead_after: int = typer.Option(
        30,
        "--dead-after",
        min=1,
        help="Seconds a host may be unreachable before the agents restore its accounts elsewhere.",
    ),
    assist: str = typer.Option(
        "auto",
        "--assist",
        envvar="PLAZA_ASSIST",
        help="The agents' language-model backend: none, local, openai or auto (local if "
        "installed, else none); see docs/assist.md.",
    ),
    bus: str | None = typer.Option(
        None,
        "--bus",
        help="Run the firehose, the app view's indexers and the labeler's workers on this "
        "NATS JetStream (nats://...; needs --postgres).",
    ),
    indexers: int | None = typer.Option(
        None,
        "--indexers",
        min=1,
        max=64,
        help="App view indexer processes on the bus (default 2; only with --bus).",
    ),
    labeler_workers: int | None = typer.Option(
        None,
        "--labeler-workers",
        min=1,
        max=64,
        help="Labeler worker processes on the bus (default 1; only with --bus).",
    ),
    bus_stream: str | None = typer.Option(
        None, "--bus-stream", hidden=True, help="JetStream stream name (tests)."
    ),
) -> None:
    """Start the local Plaza network, one OS process per service, until Ctrl-C.

    On first start (an empty DATA_DIR/gov) founds the network: the DAO (founders
    alice, bob and carol; the agent ops; the local mandate in DATA_DIR/gov/mandate.toml),
    its market (epoch --epoch, probe window --probe-interval), four hosting providers
    registered under their own DIDs and bonded, the first three contracted, the fourth
    standing by, three probers, and the labeler: its did:plc and keys in
    DATA_DIR/labeler, registered and contracted as the network's labeler (its
    classifier is trained once, from the shipped data, by the labeler at its first
    start: about a minute, in the background; kept in a cache for the next network).
    Then starts, each as its own process and in this order: the PLC directory
    (PORT_BASE), the PDSs pds1..pds4 (PORT_BASE+1, +2, +6, +7, each sending reports to
    the labeler), the DAO's API (+8), the market (+9), the relay (+3, crawling every
    PDS and the market's hosting providers), the archive (+4), the labeler (+12,
    following the relay, labelling as the DAO's mandate allows) and its provider
    daemon, the app view (+5, applying the labeler's labels), a provider
    daemon per PDS, three probers, the entryway (+10), the agents' loop (every few
    seconds: settlement, placement, capacity, and restoring a host's accounts from the
    archive once it has been unreachable --dead-after seconds; --assist picks the
    language model that drafts their proposals) and the web client
    (+11). Each with a port starts once the one before answers its health
    check. Data lives under DATA_DIR/NAME (governance in DATA_DIR/gov), each
    service's output in DATA_DIR/logs/NAME.log.

    Writes DATA_DIR/endpoints.json ({"directory": URL, "pds": [URLs of the running
    contracted PDSs], "hosts": {"pds1": URL, ...}, "relay", "archive", "appview",
    "dao", "market", "entryway", "web", "labeler": URLs, "labeler_did": the labeler's
    DID, "ledger": the ledger's path or URL, "pids":
    {NAME: PID}}, and "exited": {NAME: {"returncode", "status"}} for services that are
    down) and prints how to point the atproto SDK at it. Handles ending in .test are
    accepted. Each PDS gets its own admin password (PLAZA_PDS_ADMIN_PASSWORD, if set,
    for all), passed with its provider daemon through the environment.

    A service that dies is reported and restarted after a pause that doubles from 1 s
    to 30 s while it keeps dying; one stopped with 'plaza chaos kill' stays down until
    'plaza chaos heal'. Ctrl-C (or SIGTERM) asks every service to stop: each finishes
    its in-flight requests, flushes and closes its stores; one still running after the
    grace period is killed. Exits 0 when every service stopped cleanly on request, 1
    otherwise (a service that failed to start, or had to be killed). If plaza up itself
    is killed, its services get SIGTERM from the kernel (Linux) and stop too.

    With --bus (and --postgres, required) the relay also publishes its verified events
    to that NATS JetStream, --indexers processes appview-indexer-1..N (default 2, no
    port, each started once it runs, after the relay and the app view) index them into
    the app view's PostgreSQL schema, sharing the partitions, and the app view follows
    no firehose: it only serves that database (and the labeler's labels). Likewise
    --labeler-workers processes labeler-worker-1..N (default 1: each holds a copy of the
    classifier, and one keeps up with a local network) judge the posts and label into
    the labeler's PostgreSQL schema with the labeler's key, and the labeler follows no
    firehose: it serves those labels and the review queue. Kill one indexer or worker
    (plaza chaos kill appview-indexer-1) and the others take over its partitions.

    Example:

    \b
        plaza up
        plaza up --data-dir /tmp/plaza --port-base 3582 --epoch 60 --dead-after 15
        plaza up --postgres postgresql://postgres@127.0.0.1:5432/test
        plaza up --postgres postgresql://postgres@127.0.0.1:5432/test \\
            --bus nats://127.0.0.1:4222 --indexers 2 --labeler-workers 2
    """
    from plaza.network import chaos

    try:
        timings = Timings(epoch_s=epoch, probe_s=probe_interval, dead_after_s=dead_after)
    except PlazaError as exc:
        raise typer.BadParameter(exc.message) from exc
    if assist not in ("none", "local", "openai", "auto"):
        raise typer.BadParameter("--assist: use none, local, openai or auto")
    bus, indexers = _check_bus(bus, indexers, postgres)
    if labeler_workers is not None and bus is None:
        raise typer.BadParameter("--labeler-workers needs --bus", param_hint="--labeler-workers")
    workers = 0 if bus is None else labeler_workers or 1
    net = Network(
        Path(data_dir_opt), host, port_base, timings, postgres, _secrets(), assist=assist,
        bus=bus, indexers=indexers, labeler_workers=workers, bus_stream=bus_stream,
    )  # fmt: skip
    layout = net.layout
    chosen = services(indexers=indexers, labeler_workers=workers)
    layout.root.mkdir(parents=True, exist_ok=True)
    layout.endpoints.unlink(missing_ok=True)
    try:
        founded = _found(net)
    except PlazaError as exc:
        typer.echo(f"error: genesis of the network failed: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    if founded.created:
        typer.echo(
            f"founded the network: DAO and market on {net.ledger}, agent {founded.agent}, "
            f"{len(founded.contracted)} hosts contracted, "
            f"{len(founded.hosts) - len(founded.contracted)} standing by"
        )
    net = dataclasses.replace(net, labeler_did=founded.labeler)
    contracted = {f"pds{i}" for i, did in enumerate(founded.hosts, 1) if did in founded.contracted}
    specs = [child_spec(net, s) for s in chosen]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("PLAZA_PDS_ADMIN_PASSWORD", None)  # each PDS gets its own, in its spec
    env.pop("PLAZA_MARKET_TOKEN", None)
    typer.echo(f"starting {', '.join(s.name for s in chosen)} (logs in {layout.logs})")
    with Supervisor(
        specs, env=env, restart=Backoff(), held=lambda name: chaos.held(layout, name)
    ) as sup:
        failed = False
        try:
            started = sup.start()
        except StartupError as exc:
            typer.echo(f"error: {exc.message}", err=True)
            started, failed = False, True
        if started:
            _write_endpoints(net, sup.children, contracted)
            _announce(net, specs, sup.children)

            def report(child: Child) -> None:
                _write_endpoints(net, sup.children, contracted)
                _report_exit(child, sup.pending_restart(child))

            def restarted(child: Child) -> None:
                _write_endpoints(net, sup.children, contracted)
                typer.echo(f"{child.name} restarted (pid {child.pid})", err=True)

            sup.watch(on_exit=report, on_restart=restarted)
            if not sup.stop_requested:
                typer.echo("error: every service has stopped", err=True)
        sup.stop()
        if started:
            _write_endpoints(net, sup.children, contracted)
    for child in sup.children:
        if child.killed:
            typer.echo(
                f"error: {child.name} did not stop within {GRACE_SECONDS:g} s and was killed",
                err=True,
            )
        elif child.stop_requested and not stopped_clean(child):
            assert child.returncode is not None
            typer.echo(
                f"error: {child.name} {describe_exit(child.returncode)} when asked to stop; "
                f"its log: {child.spec.log_path}",
                err=True,
            )
    typer.echo("stopped; everything is saved under " + str(layout.root))
    if failed or not sup.clean():
        raise typer.Exit(1)


def _check_bus(
    bus: str | None, indexers: int | None, postgres: str | None
) -> tuple[str | None, int]:
    """``--bus`` (checked) and the number of indexers; a usage error (exit 2) for
    --bus without --postgres or --indexers without --bus."""
    from plaza.services.bus.layout import check_url

    if bus is None:
        if indexers is not None:
            raise typer.BadParameter("--indexers needs --bus", param_hint="--indexers")
        return None, 0
    if postgres is None:
        raise typer.BadParameter(
            "--bus needs --postgres: the indexers and the app view share its database",
            param_hint="--bus",
        )
    try:
        return check_url(bus), 2 if indexers is None else indexers
    except PlazaError as exc:
        raise typer.BadParameter(exc.message, param_hint="--bus") from exc


def _announce(net: Network, specs: list[ChildSpec], children: list[Child]) -> None:
    for spec, child in zip(specs, children, strict=True):
        where = net.url(spec.name) if _service(spec.name).offset is not None else "(no port)"
        typer.echo(
            f"{spec.name:<10} {where}   (data: {_data_dir(spec)}, "
            f"log: {spec.log_path}, pid {child.pid})"
        )
    typer.echo(f"endpoints  {net.layout.endpoints}")
    typer.echo("")
    names = {spec.name for spec in specs}
    if "web" in names:
        typer.echo(f"Open {net.url('web')} in a browser to sign up, post and govern.")
    door = "entryway" if "entryway" in names else "pds1"
    typer.echo(f"Point the atproto SDK at the {'entryway' if door == 'entryway' else 'PDS'}:")
    typer.echo(f"  from atproto import Client; c = Client(base_url='{net.url(door)}')")
    typer.echo(
        "  c.com.atproto.server.create_account({'handle': 'alice.test', "
        "'password': 'a long password'}); c.login('alice.test', 'a long password'); "
        "c.send_post('hello')"
    )
    typer.echo("")
    typer.echo("Ctrl-C stops the network.")


def _data_dir(spec: ChildSpec) -> str:
    argv = list(spec.argv)
    return argv[argv.index("--data-dir") + 1] if "--data-dir" in argv else "-"


def _report_exit(child: Child, restart_in: float | None) -> None:
    assert child.returncode is not None
    tail = child.log_tail(5)
    then = (
        f"restarting it in {restart_in:.0f} s"
        if restart_in is not None
        else "it stays down (plaza chaos heal starts it again)"
    )
    typer.echo(
        f"{child.name} (pid {child.pid}) {describe_exit(child.returncode)}; the other "
        f"services keep running; {then}. Its log: {child.spec.log_path}"
        + (f"\n{tail}" if tail else ""),
        err=True,
    )
