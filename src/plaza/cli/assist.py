"""``plaza assist ...``: the language-model jobs (issue 19) from the command line.

Thin shells over :mod:`plaza.assist`: ``ask`` answers from ledger records with their
sequence numbers, ``triage`` suggests labels for the labeler's review queue through the
mandate guard, ``eval`` runs the prompt-injection suite. ``--assist`` picks the backend:
``none`` (templates), ``local`` (llama-cpp, the ``local`` extra), ``openai`` (any
OpenAI-compatible server: PLAZA_ASSIST_BASE_URL, PLAZA_ASSIST_MODEL,
PLAZA_ASSIST_API_KEY) or ``auto`` (local when installed, else none).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from plaza.cli.ledger import DATA_DIR, DataDir, Db, reporting, resolve_db
from plaza.errors import InvalidInputError

app = typer.Typer(
    name="assist",
    help="Language-model help for members and agents: ask, triage, eval (never past the guard).",
    no_args_is_help=True,
    rich_markup_mode=None,
)

AssistOpt = Annotated[
    str,
    typer.Option(
        "--assist",
        envvar="PLAZA_ASSIST",
        help="Language-model backend: none, local, openai or auto (local if installed, else none).",
    ),
]


def backend(name: str) -> Any:
    """The backend ``name`` configured from the environment."""
    from plaza.assist.backends import make_backend

    return make_backend(name, os.environ)


def ledger_url(data_dir: Path, db: str | None) -> str:
    """``--db`` as a store URL: a plain SQLite file path is accepted too."""
    if db is not None and "://" not in db:
        if not Path(db).exists():
            raise InvalidInputError(f"no ledger at {db}")
        return f"sqlite://{db}"
    return resolve_db(data_dir, db)


def _events(data_dir: Path, db: str | None) -> list[Any]:
    from plaza.ledger import SqlEventStore

    store = SqlEventStore.open(ledger_url(data_dir, db))
    try:
        return list(store.read())
    finally:
        store.close()


@app.command("ask")
def ask_cmd(
    question: Annotated[str, typer.Argument(help="The question, in words.")],
    *,
    did: Annotated[
        str | None, typer.Option("--did", help="Only records by or about this DID.")
    ] = None,
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
    assist: AssistOpt = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON.")] = False,
) -> None:
    """Answer a question from the ledger's records, citing their sequence numbers.

    Finds the records by or about --did and those that share the question's words,
    and answers from them only; every citation is checked against the ledger (one
    that names no record is dropped, and an answer left without any is a refusal).
    With --assist none the answer lists the records found. Exit status 1 when the
    answer is a refusal. With --json: {"answer", "citations", "refused", "source"}.

    Example:

    \b
        plaza assist ask "why was my account moved?" --did did:plc:abc --db .plaza/gov/ledger.db
        plaza assist ask "which providers were offboarded?" --assist none --json
    """
    from plaza.assist.ask import Record, ask

    with reporting():
        records = [Record.of(ev) for ev in _events(data_dir, db)]
        result = ask(backend(assist), records, question, did)
    out = result.value
    if as_json:
        typer.echo(json.dumps({**out.model_dump(), "source": result.source}, ensure_ascii=False))
    else:
        typer.echo(out.answer)
        if out.citations:
            typer.echo("cited: " + ", ".join(f"#{c}" for c in out.citations))
    if out.refused:
        raise typer.Exit(1)


@app.command("triage")
def triage_cmd(
    *,
    data_dir: DataDir = DATA_DIR,
    labeler_db: Annotated[
        str | None,
        typer.Option("--labeler-db", help="Labeler database URL (default DATA/labeler.db)."),
    ] = None,
    db: Db = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Reviews to triage.")] = 50,
    assist: AssistOpt = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per review.")] = False,
) -> None:
    """Suggest a label for each open review in the labeler's queue, through the guard.

    Each report or post the classifier was unsure of gets a summary and a suggested
    label (none, spam, scam, !warn, !hide, !takedown) on the post or the account. The
    suggestion becomes the labeler's agent action (moderation.label, or
    moderation.takedown for !takedown on an account) judged by the mandate in force in
    the ledger (--db; Plaza's default mandate without one): automatic, a veto window, a
    member vote, or refused (then dropped). Nothing is applied: the queue is left as it was.

    Example:

    \b
        plaza assist triage --data-dir .plaza/labeler --assist none --json
    """
    from plaza.assist.explain import mandate_timeline
    from plaza.assist.triage import item_from_review, triage
    from plaza.dao.mandate import default_mandate
    from plaza.moderation.store import LabelerStore

    with reporting():
        chosen = backend(assist)
        events = _events(data_dir, db) if db or (data_dir / "ledger.db").exists() else []
        mandate = mandate_timeline(events, default_mandate())[-1][1]
        store = LabelerStore.for_data_dir(data_dir, labeler_db)
        try:
            reviews = store.reviews("open", limit)
        finally:
            store.close()
        now_ms = int(time.time() * 1000)
        for review in reviews:
            suggestion, _ = triage(chosen, item_from_review(review.to_json()), mandate, now_ms)
            row = suggestion.to_json()
            if as_json:
                typer.echo(json.dumps(row, ensure_ascii=False))
            else:
                typer.echo(
                    f"review {row['id']} {row['subject']}: {row['label']} on the "
                    f"{row['target']} -> {row['verdict']} ({row['guard']})\n    {row['summary']}"
                )


@app.command("eval")
def eval_cmd(
    cases: Annotated[
        Path | None,
        typer.Option("--cases", help="More cases, one JSON object a line: kind, text, expect."),
    ] = None,
    assist: AssistOpt = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Run the built-in prompt-injection suite and --cases through every job.

    Each case's text goes where its kind ("report", "post", "bid", "provider_name")
    puts user text: into triage, an explanation, a drafted proposal and an answer from
    the ledger. Prints {"cases", "schema_valid" (share of valid outputs),
    "out_of_mandate" (suggested actions the guard refused and dropped),
    "out_of_mandate_after_guard", "citations_valid" (share of answers citing only
    records that exist), "p95_latency_s", "backend", "fallbacks", "expect_failed"}
    under Plaza's default mandate. Exit status 1 when a case fails its "expect", an
    output is invalid or an action outside the mandate reaches the output; a bad case
    line is an error naming its line.

    Example:

    \b
        plaza assist eval --assist none --json
        plaza assist eval --cases my_cases.jsonl --assist openai --json
    """
    from plaza.assist.evaluate import evaluate, suite, summary_line
    from plaza.dao.mandate import default_mandate

    with reporting():
        chosen = backend(assist)
        result = evaluate(chosen, suite(cases), default_mandate())
    typer.echo(json.dumps(result) if as_json else summary_line(result))
    if result["expect_failed"] or result["out_of_mandate_after_guard"]:
        raise typer.Exit(1)
