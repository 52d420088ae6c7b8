"""``plaza serve appview-indexer``: one of N app view indexer processes on the bus
(registered on :data:`plaza.cli.serve.app`)."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import typer

from plaza.cli.serve import app
from plaza.errors import PlazaError


@app.command("appview-indexer")
def appview_indexer(
    *,
    bus: str = typer.Option(..., "--bus", help="NATS URL of the bus the relay publishes to."),
    db: str = typer.Option(..., "--db", help="The app view's PostgreSQL URL (shared)."),
    directory: str = typer.Option(
        "http://127.0.0.1:2582", "--directory", help="Directory URL for account keys."
    ),
    stream: str = typer.Option("PLAZA_FIREHOSE", "--stream", help="JetStream stream name."),
    partitions: int = typer.Option(
        16, "--partitions", min=1, max=1024, help="Partitions (as the relay publishes)."
    ),
    group: str = typer.Option("appview", "--group", help="Consumer group (one per index)."),
    worker_id: str | None = typer.Option(None, "--worker-id", help="This worker's name."),
    lease_s: float = typer.Option(
        6.0, "--lease-s", min=0.5, help="Seconds a dead worker's partitions stay held."
    ),
) -> None:
    """Index the relay's events from the bus, sharing the partitions with the other
    indexer processes of --group, until Ctrl-C or SIGTERM.

    Each partition is held by one worker at a time (a lease in JetStream's key-value
    store); a worker that dies loses its partitions --lease-s seconds later and the
    others resume them from the last acknowledged message. Every batch is acknowledged
    after it is written, and an event delivered twice changes nothing. The API servers
    (plaza serve appview --db, without --relay) read the same database.

    Example:

    \b
        plaza serve appview-indexer --bus nats://127.0.0.1:4222 \\
            --db postgresql://postgres@127.0.0.1:5432/plaza --directory http://127.0.0.1:2582
    """
    from plaza.services.appview.bus_indexer import serve_indexer

    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await serve_indexer(
                bus,
                db,
                directory,
                stream=stream,
                partitions=partitions,
                group=group,
                worker_id=worker_id,
                lease_s=lease_s,
            )

    typer.echo(f"appview-indexer on {bus} (stream {stream}, group {group})")
    try:
        asyncio.run(main())
    except PlazaError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    typer.echo("stopped")
