"""``plaza labeler ...``: train the spam and scam classifier and measure it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from plaza.errors import PlazaError

if TYPE_CHECKING:
    from plaza.moderation.dataset import Dataset

app = typer.Typer(
    name="labeler",
    help="Train and evaluate the labeler's spam and scam classifier.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _fail(exc: PlazaError) -> None:
    typer.echo(f"error: {exc.code}: {exc.message}", err=True)
    raise typer.Exit(1)


def _read(paths: list[Path]) -> Dataset:
    from plaza.moderation.dataset import read_csv

    data = read_csv(paths[0])
    for path in paths[1:]:
        data = data + read_csv(path)
    return data


DataOpt = Annotated[
    list[Path],
    typer.Option("--data", help="A label,text CSV file (spam/ham; repeatable: concatenated)."),
]


@app.command("train")
def train(
    data: DataOpt,
    out: Annotated[Path, typer.Option("--out", help="Where to write the model (JSON).")],
) -> None:
    """Train the classifier on label,text CSV files and write the model as JSON.

    Fits character (1-4) and word (1-2) n-gram TF-IDF plus the scam signals with a
    logistic regression, picks the auto-label threshold from 5-fold out-of-fold scores
    (precision at least 0.996 there), and writes the model to OUT. Prints the threshold.
    Each file needs the header label,text and labels spam or ham; a bad row is refused
    with its line number.

    Example:

    \b
        plaza labeler train --data data/spam/label-text/Youtube01-Psy.csv \\
            --data data/spam/label-text/Youtube02-KatyPerry.csv --out spam-model.json
    """
    from plaza.moderation.evaluate import train as fit
    from plaza.moderation.modelfile import save

    try:
        model = fit(_read(data))
        save(model, out)
    except PlazaError as exc:
        _fail(exc)
        return
    except OSError as exc:
        _fail(PlazaError(f"cannot write {out}: {exc}"))
        return
    typer.echo(f"wrote {out} (auto-label threshold {model.threshold:.4f})")


@app.command("eval")
def evaluate(
    train: Annotated[
        list[Path], typer.Option("--train", help="Training label,text CSV (repeatable).")
    ],
    test: Annotated[list[Path], typer.Option("--test", help="Test label,text CSV (repeatable).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Train on --train files, test on --test files, print F1 and the auto-label numbers.

    Prints F1, precision and recall of spam at score 0.5, and the precision and recall
    at the auto-label threshold chosen on the training data only (never on --test).

    Example:

    \b
        plaza labeler eval --train data/spam/label-text/Youtube01-Psy.csv \\
            --test data/spam/label-text/Youtube05-Shakira.csv --json
    """
    from plaza.moderation.evaluate import report
    from plaza.moderation.evaluate import train as fit

    try:
        result = report(fit(_read(train)), _read(test))
    except PlazaError as exc:
        _fail(exc)
        return
    if as_json:
        typer.echo(json.dumps(result))
        return
    auto = result["auto_label"]
    typer.echo(
        f"f1 {result['f1']:.4f}  precision {result['precision']:.4f}  "
        f"recall {result['recall']:.4f}\nauto-label at {auto['threshold']:.4f}: "
        f"precision {auto['precision']:.4f}  recall {auto['recall']:.4f}"
    )
