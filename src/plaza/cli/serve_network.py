"""``plaza serve market|prober|entryway|provider``: the network's control-plane daemons
(registered on :data:`plaza.cli.serve.app`)."""

from __future__ import annotations

from pathlib import Path

import typer

from plaza.cli import params
from plaza.cli.serve import _TRUSTED_PROXY, _USER_DOMAIN, app, serve_apps
from plaza.errors import PlazaError
from plaza.services.runner import ServedApp


@app.command("market")
def market(
    *,
    operator: str = typer.Option(
        ..., "--operator", envvar="PLAZA_MARKET_OPERATOR", help="Keystore identity of the operator."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(2590, "--port", callback=params.port, help="Port to listen on."),
    data_dir: str = typer.Option(".plaza", "--data-dir", envvar="PLAZA_DATA", help="Data dir."),
    db: str | None = typer.Option(None, "--db", envvar="PLAZA_DB", help="Ledger database URL."),
) -> None:
    """Run the market's HTTP API (OpenAPI at /openapi.json) until Ctrl-C.

    Providers post signed documents to it; operator commands need the bearer token in
    PLAZA_MARKET_TOKEN. Under a DAO (when the ledger holds one) the market uses its
    mandate and treasury.

    Example:

    \b
        PLAZA_MARKET_TOKEN=... plaza serve market --operator ops --port 2590
    """
    import os

    from plaza.cli.market_support import local_market as _market
    from plaza.market.api import MarketSettings
    from plaza.market.api import create_app as create_market

    try:
        m = _market(Path(data_dir), db, operator)
        settings = MarketSettings(
            ledger_url=db or str(Path(data_dir) / "ledger.db"),
            operator_did=m.operator_did,
            operator_key=None,
            mandate=m.mandate,
            admin_token=os.environ.get("PLAZA_MARKET_TOKEN", ""),
        )
        served = ServedApp("market", create_market(settings, market=m), host, port)
    except PlazaError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    serve_apps([served])


@app.command("prober")
def prober(
    *,
    signer: str = typer.Option(..., "--as", envvar="PLAZA_AS", help="Keystore identity."),
    market_url: str = typer.Option(..., "--market", help="The market's HTTP API URL."),
    interval: float = typer.Option(60.0, "--interval", help="Seconds between probe rounds."),
    timeout: float = typer.Option(5.0, "--timeout", help="Seconds before a probe fails."),
    data_dir: str = typer.Option(".plaza", "--data-dir", envvar="PLAZA_DATA", help="Data dir."),
) -> None:
    """Probe every contracted provider's /xrpc/_health and a real read
    (com.atproto.sync.getLatestCommit) each round, and submit signed samples per window.

    Prints what it probes for and where, then one line per probe window it submits
    (the window, how many providers it sampled); failures to reach the market or a
    refused window are printed on standard error.

    Example:

    \b
        plaza serve prober --as prober1 --market http://127.0.0.1:2590 --interval 60
    """
    from plaza.ledger.keystore import Keystore
    from plaza.market.prober import Prober, run_forever

    try:
        s = Keystore(Path(data_dir) / "keys.json").get(signer)
    except PlazaError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    import logging
    from typing import Any

    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    url = market_url.rstrip("/")

    async def submitted(window: int, doc: dict[str, Any]) -> None:
        typer.echo(f"window {window}: samples of {len(doc['series'])} provider(s) sent to {url}")

    typer.echo(
        f"probing for {s.did} ({signer}) every {interval:g}s: the providers with an active "
        f"contract at {url}; after each probe window the signed samples go there. "
        "Ctrl-C to stop"
    )
    run_forever(Prober(s.did, s.key, url, timeout_s=timeout, on_submit=submitted), interval)
    typer.echo("stopped")


@app.command("entryway")
def entryway(
    *,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(2591, "--port", callback=params.fixed_port, help="Port to listen on."),
    data_dir: str = typer.Option(
        ".plaza/entryway", "--data-dir", help="Where the accounts store and escrow key live."
    ),
    governance: str = typer.Option(
        ".plaza/gov", "--governance", help="The governance data dir (keystore, ledger)."
    ),
    signer: str = typer.Option("ops", "--as", envvar="PLAZA_AS", help="The DAO's agent identity."),
    directory: str = typer.Option(
        "http://127.0.0.1:2582", "--directory", help="URL of the PLC directory."
    ),
    public_url: str | None = typer.Option(
        None, "--public-url", help="URL clients reach the entryway at (default http://HOST:PORT)."
    ),
    db: str | None = typer.Option(
        None, "--db", help="Accounts database URL instead of SQLite in the data dir."
    ),
    ledger_db: str | None = typer.Option(
        None, "--ledger-db", help="Ledger database URL (default: GOVERNANCE/ledger.db)."
    ),
    user_domain: list[str] = _USER_DOMAIN,
    trusted_proxy: list[str] = _TRUSTED_PROXY,
) -> None:
    """Run the entryway: createAccount and createSession at one URL, until Ctrl-C.

    New accounts are placed by the agents (the placement reconciler, the mandate guard,
    a signed agent.action record in the ledger) on a contracted host the member never
    chooses; their rotation keys are [the member's recoveryKey if given, the DAO agent's
    key, the host's]. The entryway keeps each member's password (scrypt) and the
    account's host password in escrow (sealed with DATA_DIR/escrow.key); createSession
    answers with the session of the host the DID names now, so logins survive a move or
    a restore. Only the DAO's agent (--as) may read a host password
    (social.plaza.entryway.getHostCredential). See docs/entryway.md.

    Example:

    \b
        plaza serve entryway --port 2591 --data-dir .plaza/entryway \\
            --governance .plaza/gov --as ops --directory http://127.0.0.1:2582
    """
    from plaza.agents.hosting import Hosting
    from plaza.agents.runner import LiveAgent
    from plaza.cli.dao_support import keystore
    from plaza.cli.market_support import local_market
    from plaza.network.entryway import EntrywaySettings
    from plaza.network.entryway import create_app as create_entryway
    from plaza.services.runner import url_for

    try:
        gov = Path(governance)
        agent = keystore(gov).get(signer)
        live = LiveAgent(
            market=local_market(gov, ledger_db, signer),
            signer=agent,
            hosting=Hosting(directory),
            migration_key=agent.key,
        )
        settings = EntrywaySettings(
            data_dir=Path(data_dir),
            public_url=public_url or url_for(host, port),
            directory_url=directory,
            db_url=db,
            user_domains=tuple(user_domain),
        )
        served = ServedApp(
            "entryway",
            create_entryway(settings, live),
            host,
            port,
            trusted_proxies=tuple(trusted_proxy),
        )
    except PlazaError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    serve_apps([served])


@app.command("provider")
def provider(
    *,
    signer: str = typer.Option(..., "--as", envvar="PLAZA_AS", help="Keystore identity."),
    market_url: str = typer.Option(..., "--market", help="The market's HTTP API URL."),
    pds_url: str = typer.Option(..., "--pds", help="URL of the PDS this provider runs."),
    data_dir: str = typer.Option(".plaza", "--data-dir", envvar="PLAZA_DATA", help="Data dir."),
    price: str | None = typer.Option(
        None,
        "--price",
        help="Bid prices, e.g. account=0.04 (currency units; default: the registered ones).",
    ),
    standby: bool = typer.Option(
        False, "--standby", help="Say so in the log: a provider without a contract yet."
    ),
    interval: float = typer.Option(5.0, "--interval", min=0.1, help="Seconds between passes."),
    bid_ttl: int = typer.Option(
        3600, "--bid-ttl", min=1, help="Seconds a bid stays valid after a request's deadline."
    ),
    service: str = typer.Option(
        "hosting",
        "--service",
        help="The service its contracts are for: hosting, or labeler (then --pds is the "
        "relay whose accounts it moderates, counted with listRepos).",
    ),
) -> None:
    """Run a hosting provider's daemon: report usage each epoch, bid on open hosting
    requests, sign contracts awarded to it, all as signed documents over the market's
    HTTP API.

    Each epoch it sends one signed usage report per running contract (the accounts its
    PDS hosts, read from social.plaza.provider.getUsage with the PDS's admin password
    from PLAZA_PDS_ADMIN_PASSWORD). It bids its spare registered capacity at its prices
    on every open hosting request in its regions that those prices and its SLA meet,
    and signs every contract awarded to it. Prints one line per document the market
    accepted; refusals and unreachable services go to standard error. With --service
    labeler it reports for a labeler's contracts instead: the accounts it moderates,
    those --pds (the relay it follows) lists.

    Example:

    \b
        PLAZA_PDS_ADMIN_PASSWORD=... plaza serve provider --as provider \\
            --data-dir .plaza/provider1 --market http://127.0.0.1:2590 \\
            --pds http://127.0.0.1:2584
        plaza serve provider --as provider --data-dir .plaza/labeler --service labeler \\
            --market http://127.0.0.1:2591 --pds http://127.0.0.1:2585
    """
    import os

    from plaza.cli.market_support import currency_of, parse_prices
    from plaza.ledger.keystore import Keystore
    from plaza.network.provider import ProviderDaemon, ProviderPolicy, run_forever

    url = market_url.rstrip("/")
    if service not in ("hosting", "labeler"):
        raise typer.BadParameter("--service must be hosting or labeler")
    try:
        s = Keystore(Path(data_dir) / "keys.json").get(signer)
        prices = (
            parse_prices(currency_of(url=url, data_dir=Path(data_dir), db=None), price)
            if (price)
            else {}
        )
    except PlazaError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    daemon = ProviderDaemon(
        s.did,
        s.key,
        url,
        pds_url,
        admin_password=os.environ.get("PLAZA_PDS_ADMIN_PASSWORD", ""),
        policy=ProviderPolicy(prices=prices, bid_ttl_s=bid_ttl, service=service),
        say=typer.echo,
        warn=lambda line: typer.echo(f"warning: {line}", err=True),
    )
    role = "standby provider (no contract yet)" if standby else "provider"
    typer.echo(
        f"{role} {s.did} ({signer}) for {pds_url}: every {interval:g}s reports usage, bids "
        f"and signs at {url}. Ctrl-C to stop"
    )
    run_forever(daemon, interval)
    typer.echo("stopped")
