"""``plaza serve labeler``: the spam and scam labeler in the foreground until Ctrl-C."""

from __future__ import annotations

from pathlib import Path

import typer

from plaza.cli import params
from plaza.cli.serve import serve_apps
from plaza.errors import PlazaError
from plaza.services.runner import ServedApp, url_for

DEFAULT_PORT = 2594  # the directory's 2582 + 12, as in plaza up

_RELAY = typer.Option(
    [], "--relay", help="A subscribeRepos source to follow: the relay, or a PDS (repeatable)."
)
_TRAIN = typer.Option(
    [],
    "--train-data",
    help="label,text CSV files to train on when there is no model yet (repeatable; "
    "default: every file in the source tree's data/spam/label-text).",
)


def labeler(
    *,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(
        DEFAULT_PORT, "--port", callback=params.fixed_port, help="Port to listen on."
    ),
    data_dir: str = typer.Option(
        ".plaza/labeler", "--data-dir", help="Where the store, keys and model live."
    ),
    db: str | None = typer.Option(
        None, "--db", help="Database URL instead of SQLite in the data dir (postgresql://...)."
    ),
    relay: list[str] = _RELAY,
    directory: str = typer.Option(
        "http://127.0.0.1:2582", "--directory", help="URL of the PLC directory."
    ),
    public_url: str | None = typer.Option(
        None, "--public-url", help="URL the app view reaches this labeler at."
    ),
    model: str | None = typer.Option(
        None, "--model", help="The classifier (JSON; default DATA_DIR/model.json)."
    ),
    train_data: list[Path] = _TRAIN,
    account_strikes: int = typer.Option(
        3, "--account-strikes", min=1, help="Spam labels before the account is labelled."
    ),
    dao: str | None = typer.Option(
        None,
        "--dao",
        help="The DAO's HTTP API (plaza dao serve): its mandate decides which labels are "
        "automatic, and its executed votes authorize the rest (default: Plaza's default "
        "mandate, nothing voted).",
    ),
    query_rate: float = typer.Option(
        20.0, "--query-rate", min=0.001, help="queryLabels calls per second per address."
    ),
    query_burst: int = typer.Option(100, "--query-burst", min=1, help="... and their burst."),
    report_rate: float = typer.Option(
        0.2, "--report-rate", min=0.001, help="createReport calls per second per account."
    ),
    report_burst: int = typer.Option(10, "--report-burst", min=1, help="... and their burst."),
) -> None:
    """Run the spam and scam labeler until Ctrl-C.

    Registers its did:plc in --directory (#atproto_label key, #atproto_labeler
    endpoint), follows each --relay firehose, labels posts the classifier is sure of
    (spam or scam; the account after --account-strikes), queues the unsure ones, reports
    and appeals for review, and serves queryLabels, subscribeLabels and createReport.
    Without --model it loads DATA_DIR/model.json, training it first from --train-data
    if absent (about a minute, while it already serves; it follows the firehoses once
    the classifier is ready). The review queue's admin token is in DATA_DIR/admin.token. With --dao,
    labels the DAO's mandate sends to members (account takedowns) wait for an executed
    vote. queryLabels is limited per address and createReport per account (429 past
    --query-rate/--report-rate).

    Example:

    \b
        plaza serve labeler --relay http://127.0.0.1:2585 --directory http://127.0.0.1:2582
        plaza serve labeler --relay http://127.0.0.1:2585 --dao http://127.0.0.1:2590
        plaza serve appview --relay http://127.0.0.1:2585 --labeler did:plc:...
    """
    from plaza.moderation.service import LabelerSettings, RateLimit, create_app
    from plaza.moderation.shipped import load_or_train

    root = Path(data_dir)
    path = Path(model) if model else root / "model.json"
    try:
        settings = LabelerSettings(
            data_dir=root,
            public_url=public_url or url_for(host, port),
            directory_url=directory,
            load_classifier=lambda: load_or_train(path, train_data, say=typer.echo),
            relay_urls=tuple(relay),
            db=db,
            account_strikes=account_strikes,
            dao_url=dao,
            query_rate=RateLimit(query_rate, query_burst),
            report_rate=RateLimit(report_rate, report_burst),
        )
        app = create_app(settings)
    except PlazaError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"labeler DID {app.state.labeler.did}")
    serve_apps([ServedApp("labeler", app, host, port)])
