"""``plaza up``: the local Plaza network — the directory and two hosting providers."""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path

import typer

from plaza.cli import params
from plaza.errors import PlazaError

DEFAULT_PORT_BASE = 2582
SERVICES = 3
"""The directory and two PDSs, on consecutive ports from the port base."""


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def up(
    data_dir_opt: str = typer.Option(".plaza", "--data-dir", help="Where every store lives."),
    port_base: int = typer.Option(
        DEFAULT_PORT_BASE,
        "--port-base",
        callback=lambda v: params.port_range(v, SERVICES),
        help="Directory port; the PDSs take the next two (all three must be 1..65535).",
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
) -> None:
    """Start the local Plaza network and run it until Ctrl-C.

    Starts the PLC directory on PORT_BASE and two independent hosting providers (each
    with its own store, blobs and signing keys) on PORT_BASE+1 and PORT_BASE+2, all in
    this process, with their data under DATA_DIR. Writes DATA_DIR/endpoints.json
    ({"directory": URL, "pds": [URL, URL]}) and prints how to point the atproto SDK at
    them. Handles ending in .test are accepted. Ctrl-C finishes in-flight requests,
    flushes usage counters and closes every store: nothing acknowledged is lost.

    Example:

    \b
        plaza up
        plaza up --data-dir /tmp/plaza --port-base 3582
    """
    data_dir = Path(data_dir_opt)
    from plaza.services.directory import DirectorySettings
    from plaza.services.directory import create_app as create_directory
    from plaza.services.pds import PdsSettings
    from plaza.services.pds import create_app as create_pds
    from plaza.services.runner import ServedApp, run, url_for

    directory_url = url_for(host, port_base)
    pds_urls = [url_for(host, port_base + 1), url_for(host, port_base + 2)]
    admin = os.environ.get("PLAZA_PDS_ADMIN_PASSWORD") or None
    try:
        apps = [
            ServedApp(
                "directory",
                create_directory(DirectorySettings.for_data_dir(data_dir / "directory")),
                host,
                port_base,
            ),
        ]
        for i, url in enumerate(pds_urls, 1):
            settings = PdsSettings(
                data_dir=data_dir / f"pds{i}",
                public_url=url,
                directory_url=directory_url,
                admin_password=admin,
                # The local network's services are all on loopback: forwarded calls may
                # reach them, as long as nothing but this machine can call in.
                proxy_allow_private=_is_loopback(host),
            )
            apps.append(ServedApp(f"pds{i}", create_pds(settings), host, port_base + i))
    except PlazaError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc

    def ready(urls: list[str]) -> None:
        endpoints = {"directory": urls[0], "pds": urls[1:]}
        (data_dir / "endpoints.json").write_text(json.dumps(endpoints, indent=2) + "\n")
        typer.echo(f"directory  {urls[0]}")
        for i, url in enumerate(urls[1:], 1):
            typer.echo(f"pds{i}       {url}   (data: {data_dir / f'pds{i}'})")
        typer.echo(f"endpoints  {data_dir / 'endpoints.json'}")
        typer.echo("")
        typer.echo("Point the atproto SDK at a PDS:")
        typer.echo(f"  from atproto import Client; c = Client(base_url='{urls[1]}')")
        typer.echo(
            "  c.com.atproto.server.create_account({'handle': 'alice.test', "
            "'password': 'a long password'}); c.login('alice.test', 'a long password'); "
            "c.send_post('hello')"
        )
        typer.echo("")
        typer.echo("Ctrl-C stops the network.")

    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        run(apps, on_ready=ready)
    except PlazaError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    typer.echo("stopped; everything is saved under " + str(data_dir))
