"""``plaza serve labeler``: the spam and scam labeler in the foreground until Ctrl-C."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from plaza.cli import params
from plaza.cli.serve import serve_apps
from plaza.errors import PlazaError
from plaza.services.runner import ServedApp, url_for

if TYPE_CHECKING:
    from plaza.moderation.classifier import Classifier

DEFAULT_PORT = 2589
SHIPPED_DATA = Path("data/spam/label-text")

_RELAY = typer.Option(
    [], "--relay", help="A subscribeRepos source to follow: the relay, or a PDS (repeatable)."
)
_TRAIN = typer.Option(
    [],
    "--train-data",
    help="label,text CSV files to train on when there is no model yet (repeatable; "
    "default: every file in data/spam/label-text).",
)


def load_or_train(model: Path, train_data: list[Path]) -> Classifier:
    """The classifier at ``model``; trained from ``train_data`` and saved there first
    when the file does not exist."""
    from plaza.moderation.dataset import read_csv
    from plaza.moderation.evaluate import train
    from plaza.moderation.modelfile import load, save

    if model.exists():
        return load(model)
    files = train_data or sorted(SHIPPED_DATA.glob("*.csv"))
    if not files:
        raise PlazaError(f"no model at {model} and no --train-data to make one")
    data = read_csv(files[0])
    for f in files[1:]:
        data = data + read_csv(f)
    typer.echo(f"training the classifier on {len(data)} texts from {len(files)} files")
    classifier = train(data)
    model.parent.mkdir(parents=True, exist_ok=True)
    save(classifier, model)
    return classifier


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
) -> None:
    """Run the spam and scam labeler until Ctrl-C.

    Registers its did:plc in --directory (#atproto_label key, #atproto_labeler
    endpoint), follows each --relay firehose, labels posts the classifier is sure of
    (spam or scam; the account after --account-strikes), queues the unsure ones, reports
    and appeals for review, and serves queryLabels, subscribeLabels and createReport.
    Without --model it loads DATA_DIR/model.json, training it first from --train-data
    if absent. The review queue's admin token is in DATA_DIR/admin.token.

    Example:

    \b
        plaza serve labeler --relay http://127.0.0.1:2585 --directory http://127.0.0.1:2582
        plaza serve appview --relay http://127.0.0.1:2585 --labeler did:plc:...
    """
    from plaza.moderation.service import LabelerSettings, create_app

    root = Path(data_dir)
    try:
        classifier = load_or_train(Path(model) if model else root / "model.json", train_data)
        settings = LabelerSettings(
            data_dir=root,
            public_url=public_url or url_for(host, port),
            directory_url=directory,
            classifier=classifier,
            relay_urls=tuple(relay),
            db=db,
            account_strikes=account_strikes,
        )
        app = create_app(settings)
    except PlazaError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"labeler DID {app.state.labeler.did}")
    serve_apps([ServedApp("labeler", app, host, port)])
