"""``plaza serve ...``: run one of Plaza's services in the foreground until Ctrl-C."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import typer

from plaza.cli import params
from plaza.errors import PlazaError
from plaza.services.directory import DEFAULT_PORT, DirectorySettings, create_app
from plaza.services.runner import ServedApp, run

app = typer.Typer(
    name="serve",
    help="Run one of Plaza's services in the foreground until Ctrl-C.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

# One option shared by the services; a module-level value, as a list default must be.
_TRUSTED_PROXY = typer.Option(
    [],
    "--trusted-proxy",
    help="Address or network of a reverse proxy whose X-Forwarded-For names the client "
    "(repeatable; none by default: the client is the connection's peer).",
)

_USER_DOMAIN = typer.Option(
    [".test"], "--user-domain", help="A handle domain members sign up under (repeatable)."
)
_LABELER = typer.Option(
    [], "--labeler", help="A labeler DID whose labels are accepted and shown (repeatable)."
)
_RELAY = typer.Option(
    [], "--relay", help="A subscribeRepos source to follow: the relay, or a PDS (repeatable)."
)


def serve_apps(apps: list[ServedApp]) -> None:
    """Run ``apps`` until Ctrl-C, printing each one's URL once it listens.

    Exits 1 with the reason when an address is taken or a service cannot start.
    """
    try:
        run(apps, on_ready=lambda urls: _announce(apps, urls))
    except PlazaError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    typer.echo("stopped")


def _announce(apps: list[ServedApp], urls: list[str]) -> None:
    for served, url in zip(apps, urls, strict=True):
        typer.echo(f"{served.name} listening on {url}")
    typer.echo("press Ctrl-C to stop")


@app.command("directory")
def directory(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(
        DEFAULT_PORT, "--port", callback=params.port, help="Port to listen on (0: any free)."
    ),
    data_dir: str = typer.Option(
        ".plaza/directory", "--data-dir", help="Where the SQLite log lives."
    ),
    db: str | None = typer.Option(
        None, "--db", help="Database URL instead of the data dir (postgresql://...)."
    ),
    trusted_proxy: list[str] = _TRUSTED_PROXY,
) -> None:
    """Run the PLC-compatible DID directory until Ctrl-C.

    Serves the did:plc HTTP API (POST /{did}, GET /{did}, /{did}/data, /{did}/log,
    /{did}/log/audit, /{did}/log/last, /export) and stores every operation in
    DATA_DIR/directory.db, or in the database --db names. Prints the URL once it is
    listening; Ctrl-C finishes in-flight requests and closes the store.

    Example:

    \b
        plaza serve directory --port 2582 --data-dir .plaza/directory
        plaza serve directory --db postgresql://postgres@127.0.0.1:5432/plaza
    """
    try:
        settings = DirectorySettings.for_data_dir(Path(data_dir), db)
        served = ServedApp(
            "directory", create_app(settings), host, port, trusted_proxies=tuple(trusted_proxy)
        )
    except PlazaError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    serve_apps([served])


@app.command("pds")
def pds(
    *,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(2583, "--port", callback=params.fixed_port, help="Port to listen on."),
    data_dir: str = typer.Option(
        ".plaza/pds", "--data-dir", help="Where the store, blobs and keys live."
    ),
    db: str | None = typer.Option(
        None, "--db", help="Database URL instead of SQLite in the data dir (postgresql://...)."
    ),
    directory: str = typer.Option(
        "http://127.0.0.1:2582", "--directory", help="URL of the PLC directory to register DIDs."
    ),
    public_url: str | None = typer.Option(
        None, "--public-url", help="URL clients reach this PDS at (default http://HOST:PORT)."
    ),
    appview: str | None = typer.Option(
        None, "--appview", help="App view URL for proxied app.bsky.* reads."
    ),
    appview_did: str | None = typer.Option(
        None,
        "--appview-did",
        callback=params.did,
        help="The app view's DID (default: the did:web of --appview).",
    ),
    allow_private_proxy: bool = typer.Option(
        False,
        "--allow-private-proxy",
        help="Let atproto-proxy reach http URLs and private addresses (local networks only).",
    ),
    moderation: str | None = typer.Option(
        None,
        "--moderation",
        callback=params.did,
        help="The labeler DID that createReport goes to when atproto-proxy names none.",
    ),
    max_firehose_subscribers: int = typer.Option(
        1000,
        "--max-firehose-subscribers",
        min=1,
        help="subscribeRepos connections served at once; more are refused (close code 1013).",
    ),
    trusted_proxy: list[str] = _TRUSTED_PROXY,
) -> None:
    """Run a hosting service (an AT Protocol PDS) until Ctrl-C.

    Serves the com.atproto.* XRPC methods, app.bsky.actor profiles and preferences, and
    the subscribeRepos firehose; registers new accounts' did:plc with --directory.
    Keeps its store (SQLite in DATA_DIR, or --db), blobs and keys in DATA_DIR. The admin
    password (for social.plaza.provider.getUsage) is PLAZA_PDS_ADMIN_PASSWORD, or the
    one generated in DATA_DIR/secrets.json.
    Calls forwarded with atproto-proxy reach --appview as configured; any other target
    must be https on a public address unless --allow-private-proxy. createReport goes
    to the labeler atproto-proxy names, else to --moderation's #atproto_labeler.
    Behind a reverse proxy, name it with --trusted-proxy so that rate limits see each
    client's address from X-Forwarded-For; from anyone else the header is ignored.

    Example:

    \b
        plaza serve pds --port 2583 --data-dir .plaza/pds1 --directory http://127.0.0.1:2582
        plaza serve pds --db postgresql://postgres@127.0.0.1:5432/plaza
        plaza serve pds --host 0.0.0.0 --trusted-proxy 10.0.0.2
    """
    import os

    from plaza.services.pds import PdsSettings, service_did_for
    from plaza.services.pds import create_app as create_pds
    from plaza.services.runner import url_for

    if appview and not appview_did:
        appview_did = service_did_for(appview)
    try:
        settings = PdsSettings(
            data_dir=Path(data_dir),
            public_url=public_url or url_for(host, port),
            directory_url=directory,
            db_url=db,
            appview_url=appview,
            appview_did=appview_did,
            moderation_did=moderation,
            proxy_allow_private=allow_private_proxy,
            max_firehose_subscribers=max_firehose_subscribers,
            admin_password=os.environ.get("PLAZA_PDS_ADMIN_PASSWORD") or None,
        )
        served = ServedApp(
            "pds", create_pds(settings), host, port, trusted_proxies=tuple(trusted_proxy)
        )
    except PlazaError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    serve_apps([served])


@app.command("archive")
def archive(
    *,
    relay: str = typer.Option(
        ..., "--relay", help="Firehose to follow: a relay's (or a PDS's) base URL."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(
        2586, "--port", callback=params.port, help="Port to listen on (0: any free)."
    ),
    data_dir: str = typer.Option(
        ".plaza/archive", "--data-dir", help="Where the SQLite store and the blobs live."
    ),
    db: str | None = typer.Option(
        None, "--db", help="Database URL instead of SQLite in the data dir (postgresql://...)."
    ),
    directory: str = typer.Option(
        "http://127.0.0.1:2582", "--directory", help="URL of the PLC directory (keys, hosts)."
    ),
    public_url: str | None = typer.Option(
        None, "--public-url", help="URL clients reach this archive at (default http://HOST:PORT)."
    ),
) -> None:
    """Run the archive until Ctrl-C: a verified copy of every repository and blob.

    Follows the com.atproto.sync.subscribeRepos firehose at --relay from its stored
    cursor, verifies every commit against the account's key from --directory, fetches
    whole repositories (getRepo) and blobs (getBlob) from the accounts' PDSs when it
    must, and serves com.atproto.sync.getRepo, getRecord, getBlob, listBlobs,
    getLatestCommit, getRepoStatus and listRepos for every archived DID, also after its
    host is gone; /_health and /_metrics (JSON). Keeps its store in
    DATA_DIR/archive.db (or --db) and the blobs in DATA_DIR/blobs.

    Example:

    \b
        plaza serve archive --relay http://127.0.0.1:2585 --directory http://127.0.0.1:2582
        plaza serve archive --relay http://127.0.0.1:2583 --db postgresql://postgres@127.0.0.1:5432/plaza
    """
    from plaza.services.archive import ArchiveSettings
    from plaza.services.archive import create_app as create_archive
    from plaza.services.runner import url_for

    try:
        settings = ArchiveSettings(
            data_dir=Path(data_dir),
            relay_url=relay,
            directory_url=directory,
            public_url=public_url or url_for(host, port),
            db=db,
        )
        served = ServedApp("archive", create_archive(settings), host, port)
    except PlazaError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    serve_apps([served])


_CRAWL = typer.Option(
    [],
    "--crawl",
    help="A host to follow from the start: hostname[:port] or URL (repeatable).",
)


@app.command("relay")
def relay(
    *,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(
        2585, "--port", callback=params.port, help="Port to listen on (0: any free)."
    ),
    data_dir: str = typer.Option(
        ".plaza/relay", "--data-dir", help="Where the SQLite store lives."
    ),
    db: str | None = typer.Option(
        None, "--db", help="Database URL instead of SQLite in the data dir (postgresql://...)."
    ),
    directory: str = typer.Option(
        "http://127.0.0.1:2582", "--directory", help="URL of the PLC directory."
    ),
    crawl: list[str] = _CRAWL,
    market: str | None = typer.Option(
        None, "--market", help="A market whose hosting providers are followed too (polled)."
    ),
    public_url: str | None = typer.Option(
        None, "--public-url", help="URL clients reach this relay at (default http://HOST:PORT)."
    ),
    max_hosts: int = typer.Option(1000, "--max-hosts", min=1, help="Hosts followed at most."),
    host_rate: float = typer.Option(
        5000.0, "--host-rate", min=0.001, help="Events per second a host may send (steady)."
    ),
    host_burst: int = typer.Option(
        10000, "--host-burst", min=1, help="Events a host may send at once above its rate."
    ),
    max_frame_bytes: int = typer.Option(
        4 * 1024 * 1024, "--max-frame-bytes", min=1024, help="Largest frame taken from a host."
    ),
    replay_window: int = typer.Option(
        1_000_000, "--replay-window", min=1, help="Events kept on disk for cursor replay."
    ),
    verify_workers: int = typer.Option(
        0,
        "--verify-workers",
        min=0,
        help="Processes that verify commits beside the main one (0: verify in it).",
    ),
    no_private_hosts: bool = typer.Option(
        False,
        "--no-private-hosts",
        help="Refuse requestCrawl of loopback and private addresses (public relays).",
    ),
    bus: str | None = typer.Option(
        None, "--bus", help="NATS URL: publish every event to JetStream (partitioned by DID)."
    ),
    bus_stream: str = typer.Option(
        "PLAZA_FIREHOSE", "--bus-stream", hidden=True, help="JetStream stream name (tests)."
    ),
) -> None:
    """Run a relay: one verified firehose of every hosting provider, until Ctrl-C.

    Follows each host's com.atproto.sync.subscribeRepos (the --crawl hosts, those that
    ask with requestCrawl, and --market's hosting providers), verifies every #commit
    (signature against the account's key from --directory, rev order, the MST
    inversion back to prevData), and serves one combined firehose with its own
    sequence and cursor replay, plus listHosts, getHostStatus, listRepos,
    getRepoStatus, getLatestCommit, /_health and /_metrics. Keeps its store in
    DATA_DIR/relay.db, or in the database --db names. With --bus it also publishes
    every event to a JetStream stream (--replay-window messages kept) for
    plaza serve appview-indexer processes.

    Example:

    \b
        plaza serve relay --port 2585 --directory http://127.0.0.1:2582 \\
            --crawl 127.0.0.1:2583 --crawl 127.0.0.1:2584
        plaza serve relay --db postgresql://postgres@127.0.0.1:5432/plaza --market http://127.0.0.1:2590
        plaza serve relay --directory http://127.0.0.1:2582 --bus nats://127.0.0.1:4222
    """
    from plaza.services.bus.layout import check_url
    from plaza.services.relay import RelaySettings
    from plaza.services.relay import create_app as create_relay
    from plaza.services.runner import url_for

    try:
        settings = RelaySettings(
            data_dir=Path(data_dir),
            directory_url=directory,
            public_url=public_url or url_for(host, port),
            db=db,
            hosts=tuple(crawl),
            market_url=market,
            max_hosts=max_hosts,
            host_rate_per_s=host_rate,
            host_burst=host_burst,
            max_frame_bytes=max_frame_bytes,
            replay_window=replay_window,
            verify_workers=verify_workers,
            allow_private_hosts=not no_private_hosts,
            bus=check_url(bus) if bus else None,
            bus_stream=bus_stream,
        )
        served = ServedApp("relay", create_relay(settings), host, port, ws_deflate=False)
    except PlazaError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    serve_apps([served])


@app.command("appview")
def appview(
    *,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(2587, "--port", callback=params.fixed_port, help="Port to listen on."),
    data_dir: str = typer.Option(".plaza/appview", "--data-dir", help="Where the index lives."),
    db: str | None = typer.Option(
        None, "--db", help="Database URL instead of SQLite in the data dir (postgresql://...)."
    ),
    relay: list[str] = _RELAY,
    directory: str = typer.Option(
        "http://127.0.0.1:2582", "--directory", help="URL of the PLC directory."
    ),
    public_url: str | None = typer.Option(
        None, "--public-url", help="URL PDSs reach this app view at (default http://HOST:PORT)."
    ),
    trusted_proxy: list[str] = _TRUSTED_PROXY,
    labeler: list[str] = _LABELER,
    remote_allow_private: bool = typer.Option(
        False,
        "--remote-allow-private",
        help="Let feed generators and labelers live on private addresses and plain http "
        "(a local network only).",
    ),
) -> None:
    """Run an app view until Ctrl-C.

    Follows each --relay firehose (its cursor kept with the index), verifies every
    commit against the account's key from --directory, backfills repositories it has
    not seen from their host, and serves app.bsky.* reads (profiles, timelines, author
    feeds, threads, posts) to the PDSs that forward them with service auth. Its DID is
    the did:web of --public-url: give that to each PDS as --appview (and --appview-did).
    It is also a feed generator (its built-in feeds) and calls third-party generators;
    it shows the labels of each --labeler, read from its subscribeLabels stream.

    Example:

    \b
        plaza serve appview --relay http://127.0.0.1:2585 --directory http://127.0.0.1:2582
        plaza serve appview --relay http://127.0.0.1:2583 --relay http://127.0.0.1:2584
        plaza serve appview --db postgresql://postgres@127.0.0.1:5432/plaza
    """
    from plaza.services.appview import AppviewSettings
    from plaza.services.appview import create_app as create_appview
    from plaza.services.runner import url_for

    try:
        settings = AppviewSettings(
            data_dir=Path(data_dir),
            public_url=public_url or url_for(host, port),
            directory_url=directory,
            relay_urls=tuple(relay),
            db=db,
            labelers=tuple(labeler),
            remote_allow_private=remote_allow_private,
        )
        served = ServedApp(
            "appview", create_appview(settings), host, port, trusted_proxies=tuple(trusted_proxy)
        )
    except PlazaError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    serve_apps([served])


@app.command("web")
def web(
    *,
    pds: str | None = typer.Option(
        None, "--pds", help="The PDS members sign up and sign in at (until an entryway runs)."
    ),
    entryway: str | None = typer.Option(
        None, "--entryway", help="The entryway members sign up and sign in at (preferred)."
    ),
    appview: str | None = typer.Option(
        None, "--appview", help="An app view for reads without signing in and the built-in feeds."
    ),
    dao: str | None = typer.Option(None, "--dao", help="The DAO's HTTP API (plaza dao serve)."),
    market: str | None = typer.Option(
        None, "--market", help="The market's HTTP API (plaza serve market)."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(
        2588, "--port", callback=params.port, help="Port to listen on (0: any free)."
    ),
    secure_cookies: bool = typer.Option(
        False, "--secure-cookies", help="Mark the session cookie Secure (serve behind https)."
    ),
    signin_burst: int = typer.Option(
        10, "--signin-burst", min=1, help="Sign-in attempts one address may make at once."
    ),
    signin_rate: float = typer.Option(
        1 / 6, "--signin-rate", min=0.0001, help="Sign-in attempts per second it regains."
    ),
    labeler: str | None = typer.Option(
        None, "--labeler", help="The moderation service's DID: where members' reports go."
    ),
    cache_ttl: float = typer.Option(
        2.0, "--cache-ttl", min=0.0, max=3600.0, help="Seconds public reads are kept (0: off)."
    ),
    data_dir: str = typer.Option(
        ".plaza/web", "--data-dir", help="Where the key sealing session cookies is kept."
    ),
    workers: int = typer.Option(
        1, "--workers", min=1, max=64, help="Processes serving the port (sessions work in all)."
    ),
    trusted_proxy: list[str] = _TRUSTED_PROXY,
) -> None:
    """Run the web client and the members' dashboard until Ctrl-C.

    Server-rendered pages (they work without JavaScript; htmx updates parts of them when
    it runs): sign up and sign in through --entryway (or --pds), Home with the Following
    feed and the app view's built-in feeds, posting, likes, reposts, follows, profiles,
    threads, notifications and search; Governance (proposals, ballots, vetoes,
    delegation, the agents' actions, the treasury) from --dao; Network (providers, their
    share of accounts, SLA, invoices, concentration) from --market. It reaches the
    network only through those public APIs. Read pages stream: their head goes out at
    once, their content when the services answer.

    Sessions are sealed (AES-GCM) into an HttpOnly, SameSite cookie under a key kept in
    --data-dir, so --workers processes sharing the port serve every member; each allows
    its share of the --signin-burst and --signin-rate limits per address.

    Example:

    \b
        plaza serve web --pds http://127.0.0.1:2583 --appview http://127.0.0.1:2587 \\
            --dao http://127.0.0.1:2591 --market http://127.0.0.1:2590 --port 2588
    """
    from plaza.web import WebSettings

    signin = entryway or pds
    if signin is None:
        typer.echo("error: give --entryway or --pds (where members sign in)", err=True)
        raise typer.Exit(2)
    try:
        settings = WebSettings(
            entryway=signin,
            appview=appview,
            dao=dao,
            market=market,
            secure_cookies=secure_cookies,
            signin_burst=signin_burst,
            signin_rate_per_s=signin_rate,
            cache_ttl_s=cache_ttl,
            labeler=labeler,
            data_dir=Path(data_dir),
            workers=workers,
        )
        factory = functools.partial(_web_app, settings, host, tuple(trusted_proxy))
        served = factory(port)
    except PlazaError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    if workers == 1:
        serve_apps([served])
        return
    from plaza.services.workers import run_workers

    def ready(urls: list[str]) -> None:
        _announce([served], urls)
        typer.echo(f"{workers} processes serve {urls[0]}")

    try:
        run_workers(factory, port, workers, on_ready=ready, first=served)
    except PlazaError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    typer.echo("stopped")


def _web_app(settings: Any, host: str, proxies: tuple[str, ...], port: int) -> ServedApp:
    """The web client to serve on ``port`` (in each of ``plaza serve web``'s processes)."""
    from plaza.web import create_app as create_web

    app = create_web(settings)
    reuse = settings.workers > 1
    return ServedApp("web", app, host, port, trusted_proxies=proxies, reuse_port=reuse)
