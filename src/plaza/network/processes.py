"""The local network's processes: one table, :data:`SERVICES`, and the command lines.

Each entry is a ``plaza`` command (``plaza serve pds``, ``plaza dao serve``, ``plaza
agents run`` ...), its port offset from the port base (None: a worker without an HTTP
port), its health path (None: started once it runs), the options it gets and the
entries it needs. ``plaza up`` runs the entries whose command exists in this ``plaza``
and whose prerequisites run, in table order; an option is passed only if the command
takes it, so the table names commands and options that land later without breaking
the network before they do.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from plaza.network.genesis import HOSTED_ACCOUNTS, MAX_ACCOUNT_PRICE_UNITS
from plaza.network.layout import (
    AGENT,
    CONTRACTED,
    HOSTS,
    PROBER,
    PROBERS,
    PROVIDER,
    Layout,
    Timings,
)
from plaza.services.runner import url_for
from plaza.services.supervisor import ChildSpec

Options = Callable[[tuple[str, ...]], Collection[str] | None]
"""The options a ``plaza`` command takes (its path, e.g. ``("serve", "pds")``), or None
when this ``plaza`` does not have the command."""

AGENT_INTERVAL_S: Final = 3.0
"""Seconds between the agents' passes."""


@dataclass(frozen=True)
class Network:
    """Where the local network lives and how it runs: its data dir, listening host, port
    base, timings, optional PostgreSQL server and the secrets ``plaza up`` made for this
    run (each PDS's admin password under its name, the market's token under ``market``)."""

    data_dir: Path
    host: str
    port_base: int
    timings: Timings = field(default_factory=Timings)
    postgres: str | None = None
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    labeler_did: str | None = None
    """The labeler's ``did:plc`` (made at genesis): the app view applies its labels and
    the PDSs send it reports."""
    #: The agents' language-model backend (``plaza agents run --assist``).
    assist: str = "auto"
    bus: str | None = None
    """The NATS URL the relay publishes to and the app view's indexers read from
    (``plaza up --bus``); None: the app view follows the relay's WebSocket firehose."""
    indexers: int = 0
    """How many ``appview-indexer-N`` processes run (with :attr:`bus`)."""
    labeler_workers: int = 0
    """How many ``labeler-worker-N`` processes run (with :attr:`bus`)."""
    bus_stream: str | None = None
    """The JetStream stream's name (None: the services' default)."""

    @property
    def layout(self) -> Layout:
        return Layout(self.data_dir)

    def url(self, name: str) -> str:
        """The URL the service called ``name`` in :data:`SERVICES` listens on."""
        offset = service(name).offset
        if offset is None:
            raise ValueError(f"{name} serves no HTTP")
        return url_for(self.host, self.port_base + offset)

    @property
    def loopback(self) -> bool:
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host == "localhost"

    def db(self, store: str) -> str | None:
        """The database URL of ``store`` (a service's name, or ``ledger``) on the
        PostgreSQL server, each in its own schema; None without ``--postgres``."""
        if self.postgres is None:
            return None
        parts = urlsplit(self.postgres)
        query = parse_qs(parts.query)
        prefix = query.pop("schema", ["plaza"])[0]
        query["schema"] = [f"{prefix}_{store}"]
        return urlunsplit(parts._replace(query=urlencode(query, doseq=True)))

    @property
    def ledger(self) -> str:
        """The governance ledger: its PostgreSQL URL, or the SQLite file's path."""
        return self.db("ledger") or str(self.layout.ledger)


@dataclass(frozen=True)
class Service:
    """One process of the network: ``plaza COMMAND... [--host H --port BASE+OFFSET]
    --data-dir DIR`` plus the options ``extra`` gives; healthy once ``GET health_path``
    answers 200 (without one: once it runs). ``needs``: entries that must run for this
    one to. ``data``: its data dir (default ``DATA_DIR/NAME``); ``env``: variables it
    gets (secrets travel this way, never on a command line)."""

    name: str
    command: tuple[str, ...]
    offset: int | None
    health_path: str | None
    extra: Callable[[Network, Options], list[str]]
    needs: tuple[str, ...] = ()
    data: Callable[[Network], Path] | None = None
    env: Callable[[Network], dict[str, str]] = lambda net: {}
    store: str | None = ""
    """Which database ``--db`` names under ``--postgres``: its own schema (``""``, the
    default), the ledger (``"ledger"``), or none (None)."""
    keeps_data: bool = True
    """Whether it keeps anything on disk (gets ``--data-dir``)."""

    @property
    def kind(self) -> str:
        """What it is, for people: ``pds`` for pds1..pds4, ``prober`` for prober1..3."""
        return self.command[-1] if self.command[0] == "serve" else self.command[0]


def _if(options: Options, command: tuple[str, ...], option: str, args: list[str]) -> list[str]:
    """``args`` when ``command`` takes ``option``, else nothing."""
    takes = options(command)
    return args if takes is not None and option in takes else []


def _pds(name: str) -> Callable[[Network, Options], list[str]]:
    def extra(net: Network, options: Options) -> list[str]:
        # The local network's services are all on loopback: forwarded calls may reach
        # them, as long as nothing but this machine can call in.
        private = ["--allow-private-proxy"] if net.loopback else []
        own = ["--directory", net.url("directory"), "--public-url", net.url(name)]
        # The app view runs whenever this plaza has it (it needs only what always runs).
        appview = ["--appview", net.url("appview")] if options(("serve", "appview")) else []
        return [*own, *appview, *private, *_moderation(net, options)]

    return extra


def _runs_labeler(net: Network, options: Options) -> bool:
    return net.labeler_did is not None and options(("serve", "labeler")) is not None


def _moderation(net: Network, options: Options) -> list[str]:
    """Reports naming no labeler go to the network's (when it runs)."""
    if not _runs_labeler(net, options):
        return []
    return _if(options, ("serve", "pds"), "--moderation", ["--moderation", str(net.labeler_did)])


def _pds_env(name: str) -> Callable[[Network], dict[str, str]]:
    def env(net: Network) -> dict[str, str]:
        password = net.secrets.get(name)
        return {"PLAZA_PDS_ADMIN_PASSWORD": password} if password else {}

    return env


def _relay(net: Network, options: Options) -> list[str]:
    crawl = [arg for n in range(1, HOSTS + 1) for arg in ("--crawl", net.url(f"pds{n}"))]
    cmd = ("serve", "relay")
    market = _if(options, cmd, "--market", ["--market", net.url("market")])
    bus: list[str] = []
    if net.bus is not None:
        bus = ["--bus", net.bus]
        if net.bus_stream is not None:
            bus += _if(options, cmd, "--bus-stream", ["--bus-stream", net.bus_stream])
    return ["--directory", net.url("directory"), *crawl, *market, *bus]


def _archive(net: Network, options: Options) -> list[str]:
    return ["--relay", net.url("relay"), "--directory", net.url("directory")]


def _firehoses(net: Network, options: Options) -> list[str]:
    """The relay's combined firehose when there is a relay, else each PDS's own."""
    names = ["relay"] if options(("serve", "relay")) else [f"pds{n}" for n in range(1, HOSTS + 1)]
    return [arg for name in names for arg in ("--relay", net.url(name))]


def _appview(net: Network, options: Options) -> list[str]:
    own = ["--directory", net.url("directory"), "--public-url", net.url("appview")]
    labels: list[str] = []
    if _runs_labeler(net, options):
        labels = ["--labeler", str(net.labeler_did)]
        if net.loopback:  # the labeler is on this machine, on plain http
            labels.append("--remote-allow-private")
    # On the bus the indexers write the index; the app view only serves it.
    firehoses = _firehoses(net, options) if net.bus is None else []
    return [*firehoses, *own, *labels]


def _indexer(name: str) -> Callable[[Network, Options], list[str]]:
    def extra(net: Network, options: Options) -> list[str]:
        cmd = ("serve", "appview-indexer")
        stream = [] if net.bus_stream is None else ["--stream", net.bus_stream]
        return [
            "--bus", net.bus or "", "--directory", net.url("directory"),
            *_if(options, cmd, "--worker-id", ["--worker-id", name]),
            *_if(options, cmd, "--stream", stream),
        ]  # fmt: skip

    return extra


INDEXER: Final = "appview-indexer"
"""The app view's indexers on the bus are ``appview-indexer-1`` .. ``-N``."""


def indexer(n: int) -> Service:
    """The ``n``-th app view indexer on the bus (``plaza up --bus --indexers N``): no
    HTTP port (started once it runs), the app view's database, restarted like the rest."""
    name = f"{INDEXER}-{n}"
    return Service(
        name, ("serve", INDEXER), None, None, _indexer(name),
        needs=("directory", "relay", "appview"), store="appview", keeps_data=False,
    )  # fmt: skip


def _labeler(net: Network, options: Options) -> list[str]:
    cmd = ("serve", "labeler")
    dao = ["--dao", net.url("dao")] if options(("dao", "serve")) is not None else []
    # On the bus the workers label; the labeler serves the labels they store.
    firehoses = _firehoses(net, options) if net.bus is None else []
    return [
        *firehoses, "--directory", net.url("directory"),
        "--public-url", net.url("labeler"), "--model", str(net.layout.labeler / "model.json"),
        *_if(options, cmd, "--dao", dao),
    ]  # fmt: skip


def _labeler_worker(name: str) -> Callable[[Network, Options], list[str]]:
    def extra(net: Network, options: Options) -> list[str]:
        cmd = ("serve", LABELER_WORKER)
        dao = ["--dao", net.url("dao")] if options(("dao", "serve")) is not None else []
        stream = [] if net.bus_stream is None else ["--stream", net.bus_stream]
        return [
            "--bus", net.bus or "", "--directory", net.url("directory"),
            "--model", str(net.layout.labeler / "model.json"),
            *_if(options, cmd, "--dao", dao),
            *_if(options, cmd, "--worker-id", ["--worker-id", name]),
            *_if(options, cmd, "--stream", stream),
        ]  # fmt: skip

    return extra


LABELER_WORKER: Final = "labeler-worker"
"""The labeler's workers on the bus are ``labeler-worker-1`` .. ``-N``."""


def labeler_worker(n: int) -> Service:
    """The ``n``-th labeler worker on the bus (``plaza up --bus --labeler-workers N``): no
    HTTP port, the labeler's data dir (its DID and label key) and database."""
    name = f"{LABELER_WORKER}-{n}"
    return Service(
        name, ("serve", LABELER_WORKER), None, None, _labeler_worker(name),
        needs=("directory", "relay", "labeler"), data=lambda net: net.layout.labeler,
        store="labeler",
    )  # fmt: skip


def _labeler_provider(net: Network, options: Options) -> list[str]:
    # The labeler's market identity reports the accounts it moderates: those the
    # firehose it follows carries (the relay's, else the first PDS's).
    source = net.url("relay") if options(("serve", "relay")) else net.url("pds1")
    service = _if(options, ("serve", "provider"), "--service", ["--service", "labeler"])
    return ["--as", PROVIDER, "--market", net.url("market"), "--pds", source, *service]


def _dao(net: Network, options: Options) -> list[str]:
    return ["--directory", net.url("directory")]


def _market(net: Network, options: Options) -> list[str]:
    return ["--operator", AGENT]


def _provider(n: int) -> Callable[[Network, Options], list[str]]:
    def extra(net: Network, options: Options) -> list[str]:
        own = ["--as", PROVIDER, "--market", net.url("market"), "--pds", net.url(f"pds{n}")]
        standby = _if(options, ("serve", "provider"), "--standby", ["--standby"])
        return [*own, *(standby if n > CONTRACTED else [])]

    return extra


def _prober(net: Network, options: Options) -> list[str]:
    return ["--as", PROBER, "--market", net.url("market"),
            "--interval", f"{net.timings.probe_s:g}"]  # fmt: skip


def _entryway(net: Network, options: Options) -> list[str]:
    cmd = ("serve", "entryway")
    return [
        "--governance", str(net.layout.gov), "--as", AGENT,
        "--directory", net.url("directory"), "--public-url", net.url("entryway"),
        *_if(options, cmd, "--ledger-db", ["--ledger-db", net.db("ledger") or ""]
             if net.postgres else []),
    ]  # fmt: skip


def _agents(net: Network, options: Options) -> list[str]:
    cmd = ("agents", "run")
    t = net.timings
    return [
        "--as", AGENT, "--interval", f"{AGENT_INTERVAL_S:g}",
        "--directory", net.url("directory"), "--archive", net.url("archive"),
        "--grace", str(t.grace_s),
        *_if(options, cmd, "--dead-after", ["--dead-after", str(t.dead_after_s)]),
        *(_if(options, cmd, "--entryway", ["--entryway", net.url("entryway")])
          if options(("serve", "entryway")) is not None else []),
        *_if(options, cmd, "--capacity-floor",
             ["--capacity-floor", str(CONTRACTED * HOSTED_ACCOUNTS)]),
        *_if(options, cmd, "--capacity-max-price",
             ["--capacity-max-price", f"account={MAX_ACCOUNT_PRICE_UNITS}"]),
        *_if(options, cmd, "--assist", ["--assist", net.assist]),
    ]  # fmt: skip


def web_workers() -> int:
    """The web client's processes under ``plaza up``: one per core, two to four (pages
    are rendered in Python, one core per process; sessions work in every process)."""
    return max(2, min(4, os.cpu_count() or 1))


def _web(net: Network, options: Options) -> list[str]:
    labeler = ["--labeler", str(net.labeler_did)] if _runs_labeler(net, options) else []
    workers = str(web_workers())
    return [
        "--entryway", net.url("entryway"), "--appview", net.url("appview"),
        "--dao", net.url("dao"), "--market", net.url("market"),
        *_if(options, ("serve", "web"), "--workers", ["--workers", workers]), *labeler,
    ]  # fmt: skip


def _gov(net: Network) -> Path:
    return net.layout.gov


def _market_env(net: Network) -> dict[str, str]:
    token = net.secrets.get("market")
    return {"PLAZA_MARKET_TOKEN": token} if token else {}


def _hosts() -> tuple[Service, ...]:
    offsets = {1: 1, 2: 2, 3: 6, 4: 7}
    return tuple(
        Service(
            f"pds{n}",
            ("serve", "pds"),
            offsets[n],
            "/xrpc/_health",
            _pds(f"pds{n}"),
            needs=("directory",),
            env=_pds_env(f"pds{n}"),
        )
        for n in range(1, HOSTS + 1)
    )


def _provider_data(n: int) -> Callable[[Network], Path]:
    return lambda net: net.layout.provider(n)


def _prober_data(n: int) -> Callable[[Network], Path]:
    return lambda net: net.layout.prober(n)


_PDSS = tuple(f"pds{n}" for n in range(1, HOSTS + 1))

SERVICES: Final = (
    Service("directory", ("serve", "directory"), 0, "/_health", lambda net, o: []),
    *_hosts(),
    Service("dao", ("dao", "serve"), 8, "/dao", _dao, needs=("directory",), data=_gov,
            store="ledger"),
    Service("market", ("serve", "market"), 9, "/_health", _market, needs=("dao",), data=_gov,
            env=_market_env, store="ledger"),
    Service("relay", ("serve", "relay"), 3, "/_health", _relay, needs=("directory", *_PDSS)),
    Service("archive", ("serve", "archive"), 4, "/_health", _archive,
            needs=("directory", "relay")),
    Service("labeler", ("serve", "labeler"), 12, "/xrpc/_health", _labeler,
            needs=("directory",), data=lambda net: net.layout.labeler),
    Service("labeler-provider", ("serve", "provider"), None, None, _labeler_provider,
            needs=("market", "labeler"), data=lambda net: net.layout.labeler, store=None),
    Service("appview", ("serve", "appview"), 5, "/_health", _appview,
            needs=("directory", "pds1", "pds2")),
    *(
        Service(f"provider{n}", ("serve", "provider"), None, None, _provider(n),
                needs=("market", f"pds{n}"), data=_provider_data(n), env=_pds_env(f"pds{n}"),
                store=None)
        for n in range(1, HOSTS + 1)
    ),
    *(
        Service(f"prober{n}", ("serve", "prober"), None, None, _prober, needs=("market",),
                data=_prober_data(n), store=None)
        for n in range(1, PROBERS + 1)
    ),
    Service("entryway", ("serve", "entryway"), 10, "/xrpc/com.atproto.server.describeServer",
            _entryway,
            needs=("directory", "dao")),
    Service("agents", ("agents", "run"), None, None, _agents,
            needs=("market", "archive"), data=_gov, store="ledger"),
    Service("web", ("serve", "web"), 11, "/_health", _web,
            needs=("entryway", "appview", "dao", "market"), store=None),
)  # fmt: skip
"""The local network, in start order. An entry runs only if its command exists and
every entry it needs runs."""

_SERVICE: Final = {s.name: s for s in SERVICES}
PORTS: Final = max(s.offset for s in SERVICES if s.offset is not None) + 1


def service(name: str) -> Service:
    """The entry called ``name`` (in :data:`SERVICES`, an ``appview-indexer-N`` or a
    ``labeler-worker-N``)."""
    found = _SERVICE.get(name)
    if found is not None:
        return found
    for prefix, make in ((INDEXER, indexer), (LABELER_WORKER, labeler_worker)):
        n = name.removeprefix(f"{prefix}-")
        if n != name and n.isdigit() and not n.startswith("0"):
            return make(int(n))
    raise KeyError(name)


def table(indexers: int = 0, labeler_workers: int = 0) -> list[Service]:
    """:data:`SERVICES` with ``indexers`` app view indexers after the app view and
    ``labeler_workers`` labeler workers after the labeler."""
    out: list[Service] = []
    for s in SERVICES:
        out.append(s)
        if s.name == "appview":
            out.extend(indexer(n) for n in range(1, indexers + 1))
        if s.name == "labeler":
            out.extend(labeler_worker(n) for n in range(1, labeler_workers + 1))
    return out


def services(options: Options, indexers: int = 0, labeler_workers: int = 0) -> list[Service]:
    """The entries of :func:`table` that can run, in start order: those whose command
    this ``plaza`` has and whose ``needs`` run too."""
    chosen: list[Service] = []
    for s in table(indexers, labeler_workers):
        names = {c.name for c in chosen}
        if options(s.command) is not None and set(s.needs) <= names:
            chosen.append(s)
    return chosen


def child_spec(net: Network, s: Service, options: Options) -> ChildSpec:
    """The command line, environment, health URL and log file that run ``s`` in ``net``."""
    data = s.data(net) if s.data is not None else net.data_dir / s.name
    listen = (
        ["--host", net.host, "--port", str(net.port_base + s.offset)]
        if s.offset is not None
        else []
    )
    db: list[str] = []
    if s.store is not None and net.postgres is not None:
        db = _if(options, s.command, "--db", ["--db", net.db(s.store or s.name) or ""])
    argv = (
        sys.executable, "-m", "plaza.cli", *s.command, *listen,
        *(["--data-dir", str(data)] if s.keeps_data else []),
        *db, *s.extra(net, options),
    )  # fmt: skip
    return ChildSpec(
        name=s.name,
        argv=argv,
        health_url=net.url(s.name) + s.health_path
        if s.offset is not None and s.health_path is not None
        else None,
        log_path=net.layout.logs / f"{s.name}.log",
        env=s.env(net),
        after=s.needs,
    )
