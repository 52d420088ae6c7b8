"""``plaza serve appview-indexer`` and ``plaza serve labeler-worker``: the workers that
share the bus's partitions, N processes each (registered on :data:`plaza.cli.serve.app`)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

import typer

from plaza.cli.serve import app
from plaza.errors import PlazaError

_STREAM = typer.Option("PLAZA_FIREHOSE", "--stream", help="JetStream stream name.")
_PARTITIONS = typer.Option(
    16, "--partitions", min=1, max=1024, help="Partitions (as the relay publishes)."
)
_WORKER_ID = typer.Option(None, "--worker-id", help="This worker's name.")
_LEASE_S = typer.Option(
    6.0, "--lease-s", min=0.5, help="Seconds a dead worker's partitions stay held."
)


def _run(work: Callable[[], Awaitable[None]]) -> None:
    """Run ``work`` until it ends, or until SIGTERM or Ctrl-C cancels it."""

    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await work()

    try:
        asyncio.run(main())
    except PlazaError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    typer.echo("stopped")


@app.command("appview-indexer")
def appview_indexer(
    *,
    bus: str = typer.Option(..., "--bus", help="NATS URL of the bus the relay publishes to."),
    db: str = typer.Option(..., "--db", help="The app view's PostgreSQL URL (shared)."),
    directory: str = typer.Option(
        "http://127.0.0.1:2582", "--directory", help="Directory URL for account keys."
    ),
    stream: str = _STREAM,
    partitions: int = _PARTITIONS,
    group: str = typer.Option("appview", "--group", help="Consumer group (one per index)."),
    worker_id: str | None = _WORKER_ID,
    lease_s: float = _LEASE_S,
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

    typer.echo(f"appview-indexer on {bus} (stream {stream}, group {group})")
    _run(
        lambda: serve_indexer(
            bus,
            db,
            directory,
            stream=stream,
            partitions=partitions,
            group=group,
            worker_id=worker_id,
            lease_s=lease_s,
        )
    )


@app.command("labeler-worker")
def labeler_worker(
    *,
    bus: str = typer.Option(..., "--bus", help="NATS URL of the bus the relay publishes to."),
    db: str = typer.Option(
        ...,
        "--db",
        help="The labeler's database URL, shared with its API server (postgresql://...).",
    ),
    data_dir: str = typer.Option(
        ".plaza/labeler", "--data-dir", help="The labeler's data dir: its DID and label key."
    ),
    directory: str = typer.Option(
        "http://127.0.0.1:2582", "--directory", help="Directory URL for account keys."
    ),
    dao: str | None = typer.Option(
        None, "--dao", help="The DAO's HTTP API, whose mandate decides what is automatic."
    ),
    model: str | None = typer.Option(
        None, "--model", help="The classifier (JSON; default DATA_DIR/model.json)."
    ),
    account_strikes: int = typer.Option(
        3, "--account-strikes", min=1, help="Spam labels before the account is labelled."
    ),
    stream: str = _STREAM,
    partitions: int = _PARTITIONS,
    worker_id: str | None = _WORKER_ID,
    lease_s: float = _LEASE_S,
) -> None:
    """Label the relay's posts from the bus, sharing the partitions with the other
    labeler workers, until Ctrl-C or SIGTERM.

    Signs with the label key of the labeler in --data-dir (made by plaza serve labeler;
    a secret: copy it only to the workers' hosts) and stores labels, strikes, review
    items and each partition's cursor in --db, one transaction per batch, acknowledged
    after it commits: a batch delivered twice changes nothing. A worker that dies loses
    its partitions --lease-s seconds later and the others resume them. The API server
    (plaza serve labeler --db, without --relay) serves the labels they write. Without
    --model it loads DATA_DIR/model.json, training it first if absent.

    Example:

    \b
        plaza serve labeler-worker --bus nats://127.0.0.1:4222 \\
            --db postgresql://postgres@127.0.0.1:5432/plaza --data-dir .plaza/labeler
    """
    from plaza.moderation.bus_worker import serve_worker
    from plaza.moderation.shipped import load_or_train

    root = Path(data_dir)
    path = Path(model) if model else root / "model.json"
    typer.echo(f"labeler-worker on {bus} (stream {stream})")
    _run(
        lambda: serve_worker(
            bus,
            db,
            root,
            directory,
            lambda: load_or_train(path, say=typer.echo),
            stream=stream,
            partitions=partitions,
            dao_url=dao,
            account_strikes=account_strikes,
            worker_id=worker_id,
            lease_s=lease_s,
        )
    )
